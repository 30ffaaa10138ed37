//! The machine's network interfaces as IMDS describes them
//! (`network.interface[]`): each interface's MAC and its IPv4 and IPv6
//! addresses, loopback left out.

use serde_json::{Value, json};
#[cfg(target_os = "linux")]
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One interface, as the operating system reports it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Twelve upper-case hex digits, no separators (IMDS's spelling).
    pub mac: String,
    pub addresses: Vec<(IpAddr, u8)>,
}

/// The IMDS document of `interfaces`.
pub fn document(interfaces: &[Interface]) -> Value {
    let list: Vec<Value> = interfaces
        .iter()
        .map(|i| {
            let v4: Vec<&(IpAddr, u8)> = i.addresses.iter().filter(|(a, _)| a.is_ipv4()).collect();
            let v6: Vec<&(IpAddr, u8)> = i.addresses.iter().filter(|(a, _)| a.is_ipv6()).collect();
            json!({
                "ipv4": {
                    "ipAddress": v4.iter().map(|(a, _)| json!({"privateIpAddress": a.to_string(), "publicIpAddress": ""})).collect::<Vec<_>>(),
                    "subnet": v4.iter().map(|(a, p)| json!({"address": network(*a, *p).to_string(), "prefix": p.to_string()})).collect::<Vec<_>>(),
                },
                "ipv6": {
                    "ipAddress": v6.iter().map(|(a, _)| json!({"privateIpAddress": a.to_string()})).collect::<Vec<_>>(),
                },
                "macAddress": i.mac,
            })
        })
        .collect();
    json!({ "interface": list })
}

/// The network address of `addr` with a `prefix`-bit mask.
fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// The machine's interfaces now, by name order; loopback left out.
#[cfg(target_os = "linux")]
pub fn list() -> Vec<Interface> {
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    let mut loopback = std::collections::BTreeSet::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Vec::new();
    }
    let mut next = head;
    while !next.is_null() {
        // SAFETY: `next` is an element of the list getifaddrs returned.
        let entry = unsafe { &*next };
        next = entry.ifa_next;
        if entry.ifa_name.is_null() || entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated name, valid while the list is.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) }
            .to_string_lossy()
            .into_owned();
        if entry.ifa_flags & libc::IFF_LOOPBACK as u32 != 0 {
            loopback.insert(name);
            continue;
        }
        let interface = by_name.entry(name).or_default();
        // SAFETY: ifa_addr points to a sockaddr of the family it names, as
        // does ifa_netmask (or is null).
        unsafe {
            match i32::from((*entry.ifa_addr).sa_family) {
                libc::AF_PACKET => {
                    let ll = &*(entry.ifa_addr as *const libc::sockaddr_ll);
                    let len = usize::from(ll.sll_halen).min(ll.sll_addr.len());
                    interface.mac = ll.sll_addr[..len]
                        .iter()
                        .map(|b| format!("{b:02X}"))
                        .collect();
                }
                libc::AF_INET => {
                    let a = &*(entry.ifa_addr as *const libc::sockaddr_in);
                    let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    let prefix = if entry.ifa_netmask.is_null() {
                        32
                    } else {
                        let m = &*(entry.ifa_netmask as *const libc::sockaddr_in);
                        u32::from_be(m.sin_addr.s_addr).count_ones() as u8
                    };
                    interface.addresses.push((IpAddr::V4(ip), prefix));
                }
                libc::AF_INET6 => {
                    let a = &*(entry.ifa_addr as *const libc::sockaddr_in6);
                    let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    let prefix = if entry.ifa_netmask.is_null() {
                        128
                    } else {
                        let m = &*(entry.ifa_netmask as *const libc::sockaddr_in6);
                        m.sin6_addr
                            .s6_addr
                            .iter()
                            .map(|b| b.count_ones())
                            .sum::<u32>() as u8
                    };
                    interface.addresses.push((IpAddr::V6(ip), prefix));
                }
                _ => {}
            }
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    by_name
        .into_iter()
        .filter(|(name, _)| !loopback.contains(name))
        .map(|(_, i)| i)
        .collect()
}

/// Not read on this platform yet: IMDS's list stays empty.
#[cfg(not(target_os = "linux"))]
pub fn list() -> Vec<Interface> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_the_masked_addresses() {
        let doc = document(&[Interface {
            mac: "0011AAFFBB22".into(),
            addresses: vec![
                ("10.1.2.77".parse().unwrap_or(IpAddr::V4(0.into())), 26),
                ("fd00::1:2".parse().unwrap_or(IpAddr::V4(0.into())), 64),
            ],
        }]);
        let i = &doc["interface"][0];
        assert_eq!(i["macAddress"], "0011AAFFBB22");
        assert_eq!(i["ipv4"]["ipAddress"][0]["privateIpAddress"], "10.1.2.77");
        assert_eq!(i["ipv4"]["subnet"][0]["address"], "10.1.2.64");
        assert_eq!(i["ipv4"]["subnet"][0]["prefix"], "26");
        assert_eq!(i["ipv6"]["ipAddress"][0]["privateIpAddress"], "fd00::1:2");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn loopback_is_never_listed() {
        for interface in list() {
            assert!(
                interface.addresses.iter().all(|(a, _)| !a.is_loopback()),
                "{interface:?}"
            );
        }
    }
}
