//! Which addresses an extension's outbound HTTP may connect to. A declared
//! name is only a name: what it resolves to is checked, and only checked
//! addresses are connected to (the HTTP client resolves through
//! [`GuardedResolver`]). Loopback, private, link-local (a host cloud's
//! IMDS at 169.254.169.254), shared, multicast and reserved addresses are
//! never reached through a name; a manifest may name one literally, and
//! only when the operator allows it (`extensions.outbound.allowlocal`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Whether `ip` is a global unicast address, one on the internet at large.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_global_v4(v4),
            None => is_global_v6(v6),
        },
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (b & 0xc0) == 64)
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b & 0xfe) == 18)
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (s[0] & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (s[0] & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) carry an IPv4
        // address that decides.
        || (s[0] == 0x0064 && s[1] == 0xff9b && !embedded_v4_global(s))
        || (s[..6] == [0; 6] && !embedded_v4_global(s)))
}

fn embedded_v4_global(s: [u16; 8]) -> bool {
    let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    is_global_v4(v4)
}

/// Resolves `host` and keeps only global addresses; an error names what
/// the name resolved to when nothing global is left.
pub fn resolve_global(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let all: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let global: Vec<SocketAddr> = all.iter().copied().filter(|a| is_global(a.ip())).collect();
    if global.is_empty() {
        let seen: Vec<String> = all.iter().map(|a| a.ip().to_string()).collect();
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{host} resolves to {} only: loopback, private and link-local addresses are never reached through a name",
                if seen.is_empty() {
                    "nothing".to_string()
                } else {
                    seen.join(", ")
                }
            ),
        ));
    }
    Ok(global)
}

/// The outbound client's resolver: every name is resolved here, and only
/// its global addresses are handed to the connector.
#[derive(Debug, Default)]
pub(crate) struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = tokio::task::spawn_blocking(move || resolve_global(&host, 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_global_addresses_are_told_apart() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ] {
            let ip: IpAddr = local.parse().expect("test address");
            assert!(!is_global(ip), "{local} is not global");
        }
        for global in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = global.parse().expect("test address");
            assert!(is_global(ip), "{global} is global");
        }
    }

    #[test]
    fn a_name_that_resolves_to_loopback_is_refused() {
        let err = resolve_global("localhost", 80).expect_err("localhost is loopback");
        assert!(
            err.to_string().contains("never reached through a name"),
            "{err}"
        );
    }
}
