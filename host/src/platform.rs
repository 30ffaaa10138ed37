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
    // Until the Windows service lands (and with it the token query),
    // writing under %ProgramData%\Tether is what decides: its ACL admits
    // administrators only.
    true
}

/// What to tell someone who is not.
pub const NEEDS_ADMIN: &str = if cfg!(windows) {
    "run it from an elevated (administrator) prompt"
} else {
    "run it as root (for example with sudo)"
};
