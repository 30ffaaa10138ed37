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

/// Makes `dir` (the state root) administrators' and SYSTEM's only, not
/// inherited from %ProgramData% (where Users may read and create). On Unix
/// the state root's files carry their own modes; nothing changes.
#[cfg(windows)]
pub fn restrict_to_administrators(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    };
    use windows_sys::Win32::Security::{
        DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
        SetFileSecurityW,
    };
    let wide = |s: &std::ffi::OsStr| s.encode_wide().chain(Some(0)).collect::<Vec<u16>>();
    // Protected DACL: full control for SYSTEM and Administrators, inherited
    // by everything below.
    let sddl = wide("D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)".as_ref());
    let path = wide(dir.as_os_str());
    let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: both strings are NUL-terminated UTF-16 that outlive the
    // calls; the descriptor is allocated by the conversion and freed here.
    unsafe {
        if ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &mut descriptor,
            std::ptr::null_mut(),
        ) == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let set = SetFileSecurityW(
            path.as_ptr(),
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            descriptor,
        );
        let error = std::io::Error::last_os_error();
        LocalFree(descriptor);
        if set == 0 {
            return Err(error);
        }
    }
    Ok(())
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
