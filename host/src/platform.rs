//! What the operating system says about who we are.

/// Whether this process may change the machine's settings: root on Unix,
/// an elevated administrator on Windows.
#[cfg(unix)]
pub fn is_admin() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(windows)]
pub fn is_admin() -> bool {
    // SAFETY: IsUserAnAdmin takes no arguments; it checks the process
    // token for the elevated Administrators group.
    unsafe { windows_sys::Win32::UI::Shell::IsUserAnAdmin() != 0 }
}

/// The id of the `tether` group, whose members may use the control socket
/// and read the identity endpoint's key files; `None` when it does not exist.
#[cfg(unix)]
pub fn tether_group() -> Option<u32> {
    let name = std::ffi::CString::new(TETHER_GROUP).ok()?;
    // SAFETY: getgrnam reads a NUL-terminated name and returns a pointer to
    // static storage (or null); we copy the gid out before any other call.
    let group = unsafe { libc::getgrnam(name.as_ptr()) };
    if group.is_null() {
        return None;
    }
    // SAFETY: non-null, so it points at a valid `group`.
    Some(unsafe { (*group).gr_gid })
}

/// A security descriptor made from SDDL, freed on drop.
#[cfg(windows)]
pub struct SecurityDescriptor(windows_sys::Win32::Security::PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is read-only memory from LocalAlloc once built.
#[cfg(windows)]
unsafe impl Send for SecurityDescriptor {}
// SAFETY: as above; nothing mutates it.
#[cfg(windows)]
unsafe impl Sync for SecurityDescriptor {}

/// SYSTEM and Administrators only, protected from inheritance, inherited
/// by everything below (`OICI`).
#[cfg(windows)]
pub const ADMINISTRATORS_ONLY: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

#[cfg(windows)]
fn wide(s: &std::ffi::OsStr) -> Vec<u16> {
    use std::os::windows::ffi::OsStrExt;
    s.encode_wide().chain(Some(0)).collect()
}

#[cfg(windows)]
impl SecurityDescriptor {
    pub fn from_sddl(sddl: &str) -> std::io::Result<Self> {
        use windows_sys::Win32::Security::Authorization::{
            ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
        };
        let text = wide(sddl.as_ref());
        let mut descriptor = std::ptr::null_mut();
        // SAFETY: a NUL-terminated UTF-16 string that outlives the call; the
        // descriptor it allocates is owned by the returned value.
        let made = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if made == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self(descriptor))
    }

    pub fn as_ptr(&self) -> windows_sys::Win32::Security::PSECURITY_DESCRIPTOR {
        self.0
    }
}

#[cfg(windows)]
impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe {
            windows_sys::Win32::Foundation::LocalFree(self.0);
        }
    }
}

/// Makes `dir` (the state root) administrators' and SYSTEM's only, not
/// inherited from %ProgramData% (where Users may read and create). On Unix
/// the state root's files carry their own modes; nothing changes.
#[cfg(windows)]
pub fn restrict_to_administrators(dir: &std::path::Path) -> std::io::Result<()> {
    use windows_sys::Win32::Security::{
        DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
        SetFileSecurityW,
    };
    let path = wide(dir.as_os_str());
    let set = |sddl: &str, what: u32| -> std::io::Result<()> {
        let descriptor = SecurityDescriptor::from_sddl(sddl)?;
        // SAFETY: a NUL-terminated path and a valid descriptor, both alive
        // for the call.
        if unsafe { SetFileSecurityW(path.as_ptr(), what, descriptor.as_ptr()) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    let dacl = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
    // Owner Administrators too where this process may set it (elevated).
    set(
        &format!("O:BA{ADMINISTRATORS_ONLY}"),
        dacl | OWNER_SECURITY_INFORMATION,
    )
    .or_else(|_| set(ADMINISTRATORS_ONLY, dacl))
}

/// The machine-wide environment (what services and new sessions start
/// with), where azcmagent puts `IDENTITY_ENDPOINT` and `IMDS_ENDPOINT`.
#[cfg(windows)]
const MACHINE_ENVIRONMENT: &str = r"SYSTEM\CurrentControlSet\Control\Session Manager\Environment";

/// Sets `name` in the machine-wide environment (`None` removes it).
#[cfg(windows)]
pub fn set_machine_environment(name: &str, value: Option<&str>) -> std::io::Result<()> {
    use windows_sys::Win32::System::Registry::{
        HKEY_LOCAL_MACHINE, REG_SZ, RegDeleteKeyValueW, RegSetKeyValueW,
    };
    let key = wide(std::ffi::OsStr::new(MACHINE_ENVIRONMENT));
    let name = wide(std::ffi::OsStr::new(name));
    // SAFETY: NUL-terminated key and value names and data, alive for the
    // call; the data length is in bytes, terminator included.
    let status = unsafe {
        match value {
            Some(value) => {
                let data = wide(std::ffi::OsStr::new(value));
                RegSetKeyValueW(
                    HKEY_LOCAL_MACHINE,
                    key.as_ptr(),
                    name.as_ptr(),
                    REG_SZ,
                    data.as_ptr().cast(),
                    u32::try_from(data.len() * 2).unwrap_or(u32::MAX),
                )
            }
            None => RegDeleteKeyValueW(HKEY_LOCAL_MACHINE, key.as_ptr(), name.as_ptr()),
        }
    };
    const ERROR_FILE_NOT_FOUND: u32 = 2;
    match status {
        0 => Ok(()),
        ERROR_FILE_NOT_FOUND if value.is_none() => Ok(()),
        code => Err(std::io::Error::from_raw_os_error(code as i32)),
    }
}

/// Whether the client of a connected named pipe is SYSTEM or a member of
/// Administrators: the pipe's server impersonates it, reads the thread's
/// token, and reverts before anything else runs on this thread.
#[cfg(windows)]
pub fn pipe_client_is_admin(pipe: std::os::windows::io::RawHandle) -> std::io::Result<bool> {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::{RevertToSelf, TOKEN_QUERY};
    use windows_sys::Win32::System::Pipes::ImpersonateNamedPipeClient;
    use windows_sys::Win32::System::Threading::{GetCurrentThread, OpenThreadToken};
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: `pipe` is a connected pipe handle owned by the caller; the
    // impersonation is reverted before returning, whatever happens.
    let opened = unsafe {
        if ImpersonateNamedPipeClient(pipe as HANDLE) == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let opened = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, 1, &mut token);
        let error = std::io::Error::last_os_error();
        RevertToSelf();
        if opened == 0 { Err(error) } else { Ok(()) }
    };
    opened?;
    let member = token_is_admin(token);
    // SAFETY: opened above, closed once.
    unsafe {
        CloseHandle(token);
    }
    Ok(member)
}

/// Whether the server of a connected pipe runs as SYSTEM or a member of
/// Administrators: its process's token, duplicated for identification,
/// checked for either group.
#[cfg(windows)]
pub fn pipe_server_is_admin(pipe: &std::fs::File) -> std::io::Result<bool> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::{
        DuplicateToken, SecurityIdentification, TOKEN_DUPLICATE, TOKEN_QUERY,
    };
    use windows_sys::Win32::System::Pipes::GetNamedPipeServerProcessId;
    use windows_sys::Win32::System::Threading::{
        OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    let mut pid = 0u32;
    // SAFETY: a connected pipe handle; `pid` outlives the call.
    if unsafe { GetNamedPipeServerProcessId(pipe.as_raw_handle() as HANDLE, &mut pid) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: each handle opened here is checked and closed once.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if process.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let mut token: HANDLE = std::ptr::null_mut();
        let opened = OpenProcessToken(process, TOKEN_QUERY | TOKEN_DUPLICATE, &mut token);
        CloseHandle(process);
        if opened == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut identification: HANDLE = std::ptr::null_mut();
        let duplicated = DuplicateToken(token, SecurityIdentification, &mut identification);
        CloseHandle(token);
        if duplicated == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let admin = token_is_admin(identification);
        CloseHandle(identification);
        Ok(admin)
    }
}

/// Whether an impersonation or identification token is SYSTEM's or an
/// administrator's.
#[cfg(windows)]
fn token_is_admin(token: windows_sys::Win32::Foundation::HANDLE) -> bool {
    use windows_sys::Win32::Security::{
        CheckTokenMembership, CreateWellKnownSid, SECURITY_MAX_SID_SIZE,
        WinBuiltinAdministratorsSid, WinLocalSystemSid,
    };
    [WinLocalSystemSid, WinBuiltinAdministratorsSid]
        .into_iter()
        .any(|kind| {
            let mut sid = [0u8; SECURITY_MAX_SID_SIZE as usize];
            let mut size = sid.len() as u32;
            let mut is_member = 0;
            // SAFETY: `sid` is large enough for any well-known SID; the
            // token is valid for the caller's call.
            unsafe {
                CreateWellKnownSid(
                    kind,
                    std::ptr::null_mut(),
                    sid.as_mut_ptr().cast(),
                    &mut size,
                ) != 0
                    && CheckTokenMembership(token, sid.as_mut_ptr().cast(), &mut is_member) != 0
                    && is_member != 0
            }
        })
}

#[cfg(unix)]
pub fn restrict_to_administrators(_dir: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// Whether `path` is owned by root (Unix; by this user when not root) or by
/// Administrators or SYSTEM (Windows): only then may what it holds be
/// trusted as this host's own (a compiled component is native code).
#[cfg(unix)]
pub fn owned_by_admin(path: &std::path::Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::symlink_metadata(path)?.uid();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    Ok(owner == 0 || owner == me)
}

#[cfg(windows)]
pub fn owned_by_admin(path: &std::path::Path) -> std::io::Result<bool> {
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::{GetNamedSecurityInfoW, SE_FILE_OBJECT};
    use windows_sys::Win32::Security::{
        IsWellKnownSid, OWNER_SECURITY_INFORMATION, WinBuiltinAdministratorsSid, WinLocalSystemSid,
    };
    let wide_path = wide(path.as_os_str());
    let mut owner = std::ptr::null_mut();
    let mut descriptor = std::ptr::null_mut();
    // SAFETY: a NUL-terminated path; on success `descriptor` is allocated
    // by the call (freed below) and `owner` points into it.
    let status = unsafe {
        GetNamedSecurityInfoW(
            wide_path.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut descriptor,
        )
    };
    if status != 0 {
        return Err(std::io::Error::from_raw_os_error(status as i32));
    }
    // SAFETY: `owner` is valid while `descriptor` lives.
    let admin = unsafe {
        IsWellKnownSid(owner, WinBuiltinAdministratorsSid) != 0
            || IsWellKnownSid(owner, WinLocalSystemSid) != 0
            || is_current_user(owner)
    };
    // SAFETY: allocated by GetNamedSecurityInfoW, freed once.
    unsafe {
        LocalFree(descriptor);
    }
    Ok(admin)
}

/// Whether `sid` is this process's user (an administrator's own files).
#[cfg(windows)]
unsafe fn is_current_user(sid: windows_sys::Win32::Security::PSID) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::{
        EqualSid, GetTokenInformation, TOKEN_QUERY, TOKEN_USER, TokenUser,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the caller's `sid` is valid; every buffer outlives its call,
    // and the token is closed once.
    unsafe {
        if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
            return false;
        }
        let mut buffer = [0u64; 64];
        let mut size = 0u32;
        let read = GetTokenInformation(
            token,
            TokenUser,
            buffer.as_mut_ptr().cast(),
            std::mem::size_of_val(&buffer) as u32,
            &mut size,
        );
        CloseHandle(token);
        if read == 0 {
            return false;
        }
        let user = &*(buffer.as_ptr() as *const TOKEN_USER);
        EqualSid(user.User.Sid, sid) != 0
    }
}

/// Prepares the state root for a command run as root/administrator: on
/// Windows it is created administrators' and SYSTEM's only (a protected
/// DACL that everything below inherits) before anything is written in it,
/// so a `machine.key` never inherits `%ProgramData%`'s read access for
/// Users; on both, a root someone else owns (pre-created to plant files)
/// is refused.
pub fn secure_state_root(root: &std::path::Path) -> anyhow::Result<()> {
    if !root.exists() {
        if cfg!(unix) {
            // Unix roots get their modes file by file; nothing to prepare.
            return Ok(());
        }
        std::fs::create_dir_all(root).map_err(|e| {
            anyhow::anyhow!("could not create the state root {}: {e}", root.display())
        })?;
    }
    match owned_by_admin(root) {
        Ok(true) => {}
        Ok(false) => anyhow::bail!(
            "the state root {} is owned by another user, who could have planted files in it; Tether refuses it. Remove it (or give it to {}) and run the command again",
            root.display(),
            if cfg!(windows) {
                "Administrators"
            } else {
                "root"
            }
        ),
        Err(e) => tracing::warn!("could not read the owner of {}: {e}", root.display()),
    }
    if let Err(e) = restrict_to_administrators(root) {
        tracing::warn!(
            "could not restrict {} to administrators: {e}",
            root.display()
        );
    }
    Ok(())
}

/// The group that may talk to the service without being root.
pub const TETHER_GROUP: &str = "tether";

/// What to tell someone who is not.
pub const NEEDS_ADMIN: &str = if cfg!(windows) {
    "run it from an elevated (administrator) prompt"
} else {
    "run it as root (for example with sudo)"
};

/// The machine-wide application data folder (`C:\ProgramData`), as the
/// shell knows it. Not the `ProgramData` variable: a service's environment
/// is not the operator's, and both must find the same state root.
#[cfg(windows)]
pub fn program_data() -> Option<std::path::PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::{
        FOLDERID_ProgramData, KF_FLAG_DEFAULT, SHGetKnownFolderPath,
    };
    let mut path: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: the GUID is a constant; on return `path` is null or a
    // NUL-terminated string the shell allocated, which we read up to its
    // NUL and free once with CoTaskMemFree, as the API requires.
    unsafe {
        let hr = SHGetKnownFolderPath(
            &FOLDERID_ProgramData,
            KF_FLAG_DEFAULT as u32,
            std::ptr::null_mut(),
            &mut path,
        );
        if path.is_null() {
            return None;
        }
        let len = (0..).take_while(|&i| *path.add(i) != 0).count();
        let folder = std::ffi::OsString::from_wide(std::slice::from_raw_parts(path, len));
        CoTaskMemFree(path as *const core::ffi::c_void);
        (hr == 0).then(|| folder.into())
    }
}
