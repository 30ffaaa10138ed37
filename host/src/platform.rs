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
        DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, SetFileSecurityW,
    };
    let descriptor = SecurityDescriptor::from_sddl(ADMINISTRATORS_ONLY)?;
    let path = wide(dir.as_os_str());
    // SAFETY: a NUL-terminated path and a valid descriptor, both alive
    // for the call.
    let set = unsafe {
        SetFileSecurityW(
            path.as_ptr(),
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            descriptor.as_ptr(),
        )
    };
    if set == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the client of a connected named pipe is SYSTEM or a member of
/// Administrators: the pipe's server impersonates it, reads the thread's
/// token, and reverts before anything else runs on this thread.
#[cfg(windows)]
pub fn pipe_client_is_admin(pipe: std::os::windows::io::RawHandle) -> std::io::Result<bool> {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::{
        CheckTokenMembership, CreateWellKnownSid, RevertToSelf, SECURITY_MAX_SID_SIZE, TOKEN_QUERY,
        WinBuiltinAdministratorsSid, WinLocalSystemSid,
    };
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
    let mut member = false;
    for kind in [WinLocalSystemSid, WinBuiltinAdministratorsSid] {
        let mut sid = [0u8; SECURITY_MAX_SID_SIZE as usize];
        let mut size = sid.len() as u32;
        let mut is_member = 0;
        // SAFETY: `sid` is large enough for any well-known SID; `token` is
        // the impersonation token opened above.
        unsafe {
            if CreateWellKnownSid(
                kind,
                std::ptr::null_mut(),
                sid.as_mut_ptr().cast(),
                &mut size,
            ) != 0
                && CheckTokenMembership(token, sid.as_mut_ptr().cast(), &mut is_member) != 0
                && is_member != 0
            {
                member = true;
            }
        }
    }
    // SAFETY: opened above, closed once.
    unsafe {
        CloseHandle(token);
    }
    Ok(member)
}

#[cfg(unix)]
pub fn restrict_to_administrators(_dir: &std::path::Path) -> std::io::Result<()> {
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
