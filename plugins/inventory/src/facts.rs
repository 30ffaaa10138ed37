//! Reading the machine's files into facts. Each reader returns `None` when
//! its file is not granted or not there: the document leaves it out.

use serde::Serialize;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OsRelease {
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
}

/// `/etc/os-release` (or `/usr/lib/os-release`, which it usually links to).
pub fn os_release() -> Option<OsRelease> {
    let text = read("/etc/os-release").or_else(|| read("/usr/lib/os-release"))?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    Some(OsRelease {
        id: field("ID"),
        version_id: field("VERSION_ID"),
        pretty_name: field("PRETTY_NAME"),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    pub count: usize,
    pub model: String,
}

pub fn cpu() -> Option<Cpu> {
    let text = read("/proc/cpuinfo")?;
    let count = text.lines().filter(|l| l.starts_with("processor")).count();
    let model = text
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    Some(Cpu { count, model })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    pub total_kib: u64,
    pub available_kib: u64,
}

/// A `Key:   123 kB` line of `/proc/meminfo`.
pub fn meminfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

pub fn memory() -> Option<Memory> {
    let text = read("/proc/meminfo")?;
    Some(Memory {
        total_kib: meminfo_field(&text, "MemTotal")?,
        available_kib: meminfo_field(&text, "MemAvailable").unwrap_or(0),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filesystem {
    pub device: String,
    pub mount_point: String,
    pub kind: String,
}

/// The kernel's pseudo file systems, which say nothing of the machine's
/// storage.
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "pstore",
    "bpf",
    "debugfs",
    "tracefs",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "autofs",
    "binfmt_misc",
    "rpc_pipefs",
    "nsfs",
    "efivarfs",
    "ramfs",
    "overlay",
];

pub fn filesystems() -> Option<Vec<Filesystem>> {
    let text = read("/proc/mounts")?;
    Some(
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some(Filesystem {
                    device: f.next()?.to_string(),
                    mount_point: f.next()?.replace("\\040", " "),
                    kind: f.next()?.to_string(),
                })
            })
            .filter(|fs| !PSEUDO.contains(&fs.kind.as_str()))
            .collect(),
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub name: String,
    pub version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Packages {
    /// `dpkg` or `rpm`.
    pub source: &'static str,
    pub count: usize,
    /// Empty for rpm: its database is named, not read (yet).
    pub installed: Vec<Package>,
}

/// dpkg's status file: one stanza per package, `Status: install ok
/// installed` for what is installed.
pub fn dpkg(text: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter(|stanza| stanza.lines().any(|l| l == "Status: install ok installed"))
        .filter_map(|stanza| {
            let field = |key: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
                    .map(str::to_string)
            };
            Some(Package {
                name: field("Package")?,
                version: field("Version").unwrap_or_default(),
            })
        })
        .collect()
}

pub fn packages() -> Option<Packages> {
    if let Some(text) = read("/var/lib/dpkg/status") {
        let installed = dpkg(&text);
        return Some(Packages {
            source: "dpkg",
            count: installed.len(),
            installed,
        });
    }
    std::fs::metadata("/var/lib/rpm")
        .is_ok()
        .then_some(Packages {
            source: "rpm",
            count: 0,
            installed: Vec::new(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_lists_only_installed_packages() {
        let text = "Package: a\nStatus: install ok installed\nVersion: 1.0\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 2\n\nPackage: c\nStatus: install ok installed\nVersion: 3:4.5-1\n";
        let names: Vec<_> = dpkg(text)
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect();
        assert_eq!(
            names,
            vec![("a".into(), "1.0".into()), ("c".into(), "3:4.5-1".into())]
        );
    }

    #[test]
    fn meminfo_fields_are_kib() {
        let text = "MemTotal:       24576000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(meminfo_field(text, "MemTotal"), Some(24_576_000));
        assert_eq!(meminfo_field(text, "MemAvailable"), Some(1000));
        assert_eq!(meminfo_field(text, "Missing"), None);
    }
}
