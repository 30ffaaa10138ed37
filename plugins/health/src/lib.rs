//! `health`: every minute (see `extension.toml`), samples the machine's
//! CPU use, memory, load and disk I/O from `/proc` and posts them as JSON
//! to the `endpoint` setting (an origin its manifest declares), with the
//! protected setting `key` as its bearer token. `invoke sample` does one
//! sample on demand and returns what it posted.
//!
//! CPU use and disk rates are deltas since the previous sample, whose
//! counters are kept in the key-value store; the first sample measures
//! since boot. Disk *space* is not in `/proc` (and WASI has no `statvfs`),
//! so it is not reported.

mod proc;

use serde::Serialize;
use tether_sdk::{Error, Extension, StatusState, http, kv, settings};

struct Health;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Sample {
    resource_id: String,
    name: String,
    /// Seconds since the epoch, from the guest's clock.
    time: u64,
    cpu_percent: f64,
    memory: Memory,
    load: [f64; 3],
    disk: Disk,
    uptime_seconds: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Memory {
    total_kib: u64,
    available_kib: u64,
    used_percent: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Disk {
    read_bytes_per_second: f64,
    written_bytes_per_second: f64,
}

const PREVIOUS: &str = "previous";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn missing(what: &str) -> Error {
    Error::new(
        "unavailable",
        &format!("{what} is not readable: the operator grants it with extensions.files.allowed"),
    )
}

fn sample() -> Result<String, Error> {
    let endpoint: String = settings::get("endpoint")?.ok_or_else(|| {
        Error::invalid_argument("the `endpoint` setting (the metrics URL) is required")
    })?;
    let key: Option<String> = settings::protected("key")?;
    let counters =
        proc::Counters::read().ok_or_else(|| missing("/proc/stat or /proc/diskstats"))?;
    let meminfo = proc::meminfo().ok_or_else(|| missing("/proc/meminfo"))?;
    let previous: Option<proc::Counters> = kv::get(PREVIOUS)?;
    let time = now();
    let since = previous
        .as_ref()
        .map(|p| time.saturating_sub(p.time))
        .unwrap_or(0);
    let (cpu_percent, read, written) = counters.since(previous.as_ref(), time);
    kv::set(
        PREVIOUS,
        &proc::Counters {
            time,
            ..counters.clone()
        },
    )?;
    let machine = tether_sdk::machine();
    let sample = Sample {
        resource_id: machine.resource_id,
        name: machine.name,
        time,
        cpu_percent,
        memory: Memory {
            total_kib: meminfo.0,
            available_kib: meminfo.1,
            used_percent: if meminfo.0 == 0 {
                0.0
            } else {
                100.0 * (meminfo.0 - meminfo.1.min(meminfo.0)) as f64 / meminfo.0 as f64
            },
        },
        load: proc::loadavg().unwrap_or_default(),
        disk: Disk {
            read_bytes_per_second: read,
            written_bytes_per_second: written,
        },
        uptime_seconds: proc::uptime().unwrap_or(0),
    };
    let body = serde_json::to_vec(&sample)?;
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(key) = key {
        headers.push(("authorization".to_string(), format!("Bearer {key}")));
    }
    let response = http::send("POST", &endpoint, &headers, Some(body.clone()))?;
    if !(200..300).contains(&response.status) {
        let why = format!("the metrics endpoint answered {}", response.status);
        tether_sdk::report_status(StatusState::Warning, &why);
        return Err(Error::new("unavailable", &why));
    }
    tether_sdk::report_status(
        StatusState::Success,
        &format!(
            "CPU {:.1}%, memory {:.1}%, load {:.2} (over {since} s)",
            sample.cpu_percent, sample.memory.used_percent, sample.load[0]
        ),
    );
    Ok(String::from_utf8_lossy(&body).into_owned())
}

impl Extension for Health {
    fn invoke(command: &str, _args: &[String]) -> Result<String, Error> {
        match command {
            "sample" => sample(),
            other => Err(Error::unknown_command(other)),
        }
    }
}

tether_sdk::export_extension!(Health);
