//! systemd's readiness and watchdog protocol (`sd_notify`): datagrams to
//! the socket named by `NOTIFY_SOCKET`. Without systemd (or on Windows)
//! every call does nothing.

use std::time::Duration;

/// Tells the service manager something; false when there is no one to tell.
pub fn notify(message: &str) -> bool {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) => imp::send_to(&socket, message),
        None => false,
    }
}

pub fn ready() -> bool {
    notify(&format!("READY=1\nMAINPID={}", std::process::id()))
}

pub fn stopping() -> bool {
    notify("STOPPING=1")
}

pub fn watchdog() -> bool {
    notify("WATCHDOG=1")
}

pub fn status(text: &str) -> bool {
    notify(&format!("STATUS={}", text.replace('\n', " ")))
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when systemd
/// asked for pings and they are meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(target_os = "linux")]
mod imp {
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    pub fn send_to(path: &std::ffi::OsStr, message: &str) -> bool {
        let Ok(socket) = UnixDatagram::unbound() else {
            return false;
        };
        let bytes = path.as_encoded_bytes();
        // systemd may name an abstract socket: "@name".
        let address = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
            None => SocketAddr::from_pathname(path),
        };
        match address {
            Ok(address) => socket.send_to_addr(message.as_bytes(), &address).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn send_to(_path: &std::ffi::OsStr, _message: &str) -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn sends_to_path_and_abstract_sockets() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path)?;
        listener.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        assert!(super::imp::send_to(path.as_os_str(), "READY=1"));
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("tether-notify-test-{}", std::process::id());
        let abstract_listener =
            UnixDatagram::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(&name)?)?;
        abstract_listener.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        assert!(super::imp::send_to(
            format!("@{name}").as_ref(),
            "WATCHDOG=1"
        ));
        let n = abstract_listener.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"WATCHDOG=1");

        assert!(!super::imp::send_to(
            dir.path().join("absent").as_os_str(),
            "READY=1"
        ));
        Ok(())
    }
}
