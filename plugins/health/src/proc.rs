//! The `/proc` files the health sample reads.

use serde::{Deserialize, Serialize};

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Cumulative counters, kept between samples to measure rates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    pub time: u64,
    /// All CPU time and idle time (idle + iowait), in clock ticks.
    pub cpu_total: u64,
    pub cpu_idle: u64,
    /// Sectors (512 bytes) read and written by whole disks.
    pub sectors_read: u64,
    pub sectors_written: u64,
}

impl Counters {
    pub fn read() -> Option<Self> {
        let (cpu_total, cpu_idle) = cpu(&read("/proc/stat")?)?;
        let (sectors_read, sectors_written) = disks(&read("/proc/diskstats")?);
        Some(Self {
            time: 0,
            cpu_total,
            cpu_idle,
            sectors_read,
            sectors_written,
        })
    }

    /// CPU use (percent) and disk bytes per second since `previous`
    /// (since boot when there is none, or the counters went back).
    pub fn since(&self, previous: Option<&Counters>, now: u64) -> (f64, f64, f64) {
        let base = previous
            .filter(|p| p.cpu_total <= self.cpu_total && p.time < now)
            .cloned()
            .unwrap_or_default();
        let total = self.cpu_total - base.cpu_total;
        let idle = self.cpu_idle.saturating_sub(base.cpu_idle);
        let cpu = if total == 0 {
            0.0
        } else {
            100.0 * (total - idle.min(total)) as f64 / total as f64
        };
        let seconds = if base.time == 0 {
            uptime().unwrap_or(1).max(1) as f64
        } else {
            (now - base.time) as f64
        };
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 * 512.0 / seconds;
        (
            cpu,
            rate(self.sectors_read, base.sectors_read),
            rate(self.sectors_written, base.sectors_written),
        )
    }
}

/// The aggregate `cpu` line: (all time, idle + iowait).
pub fn cpu(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // guest and guest_nice are already in user and nice.
    let total = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

/// Sectors read and written by whole disks (not their partitions, not
/// loop or ram devices).
pub fn disks(diskstats: &str) -> (u64, u64) {
    let mut read = 0;
    let mut written = 0;
    for line in diskstats.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(name) = f.get(2) else { continue };
        let partition = name
            .strip_prefix("nvme")
            .map_or(name.ends_with(|c: char| c.is_ascii_digit()), |n| {
                n.contains('p')
            });
        if partition
            || name.starts_with("loop")
            || name.starts_with("ram")
            || name.starts_with("dm-")
        {
            continue;
        }
        read += f.get(5).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        written += f.get(9).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    (read, written)
}

/// (MemTotal, MemAvailable) in KiB.
pub fn meminfo() -> Option<(u64, u64)> {
    let text = read("/proc/meminfo")?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some((field("MemTotal")?, field("MemAvailable").unwrap_or(0)))
}

pub fn loadavg() -> Option<[f64; 3]> {
    let text = read("/proc/loadavg")?;
    let mut f = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0));
    Some([f.next()?, f.next()?, f.next()?])
}

pub fn uptime() -> Option<u64> {
    read("/proc/uptime")?
        .split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .map(|s| s as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_disk_counters_parse() {
        let stat = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(cpu(stat), Some((981, 820)));
        let diskstats = "   8       0 sda 10 0 200 0 5 0 300 0 0 0 0\n   8       1 sda1 1 0 100 0 1 0 100 0 0 0 0\n 259 0 nvme0n1 1 0 50 0 1 0 60 0 0 0 0\n 259 1 nvme0n1p1 1 0 50 0 1 0 60 0 0 0 0\n   7 0 loop0 1 0 999 0 0 0 999 0 0 0 0\n";
        assert_eq!(disks(diskstats), (250, 360));
    }

    #[test]
    fn rates_are_deltas_over_the_interval() {
        let then = Counters {
            time: 100,
            cpu_total: 1000,
            cpu_idle: 900,
            sectors_read: 0,
            sectors_written: 0,
        };
        let now = Counters {
            time: 0,
            cpu_total: 1100,
            cpu_idle: 950,
            sectors_read: 10,
            sectors_written: 20,
        };
        let (cpu, read, written) = now.since(Some(&then), 110);
        assert!((cpu - 50.0).abs() < 1e-9);
        assert!((read - 512.0).abs() < 1e-9);
        assert!((written - 1024.0).abs() < 1e-9);
    }
}
