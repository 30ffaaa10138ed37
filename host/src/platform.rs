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

/// The group that may talk to the service without being root.
pub const TETHER_GROUP: &str = "tether";

/// What to tell someone who is not.
pub const NEEDS_ADMIN: &str = if cfg!(windows) {
    "run it from an elevated (administrator) prompt"
} else {
    "run it as root (for example with sudo)"
};
