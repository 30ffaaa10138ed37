//! Extensions' `[[schedule]]` entries as the service runs them: when each
//! is due (jittered, so a fleet does not run in step), whether a run is
//! skipped, and what a run leaves behind (the extension's status and the
//! entry's last run, result and next run, shown by `extension show` and
//! reported to the cloud).

use crate::runtime::{CallOutcome, ConnectionStatus, GuestError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tether_package::Schedule;

/// One entry's runs, kept in the extension's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleRun {
    /// The command and its arguments.
    pub schedule: String,
    pub every: String,
    /// When it last ran or was skipped (seconds since the epoch).
    #[serde(default)]
    pub last_run: Option<u64>,
    /// `succeeded`, `failed` or `skipped`.
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub message: String,
    /// The last 4 KiB of the command's output.
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub next_run: Option<u64>,
}

impl ScheduleRun {
    pub fn of(schedule: &Schedule) -> Self {
        Self {
            schedule: schedule.label(),
            every: schedule.every.clone(),
            ..Default::default()
        }
    }
}

/// Why a due run does not happen.
pub fn skip_reason(
    schedule: &Schedule,
    enabled: bool,
    connection: ConnectionStatus,
) -> Option<&'static str> {
    if !enabled {
        return Some("the extension is disabled");
    }
    if schedule.skip_when_disconnected && connection != ConnectionStatus::Connected {
        return Some("the machine is not connected (the entry says skip_when_disconnected)");
    }
    None
}

/// When the first run is due after the service starts or the extension is
/// installed: soon, at a random point within a tenth of the interval (at
/// most 30 s), so that machines started together do not run together.
pub fn first_delay(every: Duration, random: f64) -> Duration {
    (every / 10)
        .min(Duration::from_secs(30))
        .mul_f64(random.clamp(0.0, 1.0))
}

/// The delay until the next run: the interval, give or take 5 %.
pub fn next_delay(every: Duration, random: f64) -> Duration {
    every.mul_f64(0.95 + 0.1 * random.clamp(0.0, 1.0))
}

/// A random number in [0, 1) for the jitter.
pub fn random_unit() -> f64 {
    let bytes = crate::util::random_bytes::<8>();
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// What one run did: its result, the message that becomes the extension's
/// status, and its output. A guest's own failure is a failed run; anything
/// else (disabled, no longer allowed, not loadable) means it could not run.
pub fn outcome(
    schedule: &Schedule,
    result: &anyhow::Result<CallOutcome>,
) -> (&'static str, String, String, String) {
    match result {
        Ok(outcome) => {
            let (state, message) = match &outcome.status {
                Some(s) => (crate::runtime::status_name(s.state), s.message.clone()),
                None => (
                    "success",
                    format!("scheduled `{}` succeeded", schedule.label()),
                ),
            };
            let output =
                tether_cloud_api::run_command::tail(outcome.output.as_deref().unwrap_or_default());
            ("succeeded", state.to_string(), message, output)
        }
        Err(e) => {
            let message = match e.downcast_ref::<GuestError>() {
                Some(guest) => format!("scheduled `{}` failed: {guest}", schedule.label()),
                None => format!("scheduled `{}` could not run: {e:#}", schedule.label()),
            };
            ("failed", "error".into(), message, String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(skip: bool) -> Schedule {
        Schedule {
            every: "5m".into(),
            command: "collect".into(),
            args: vec![],
            skip_when_disconnected: skip,
        }
    }

    #[test]
    fn disabled_always_skips_disconnected_only_when_asked() {
        use ConnectionStatus::*;
        assert!(skip_reason(&entry(false), false, Connected).is_some());
        assert!(skip_reason(&entry(false), true, NotConnected).is_none());
        assert!(skip_reason(&entry(true), true, Disconnected).is_some());
        assert!(skip_reason(&entry(true), true, Connected).is_none());
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let every = Duration::from_secs(300);
        assert_eq!(first_delay(every, 0.0), Duration::ZERO);
        assert_eq!(first_delay(every, 1.0), Duration::from_secs(30));
        assert_eq!(
            first_delay(Duration::from_secs(60), 1.0),
            Duration::from_secs(6)
        );
        assert_eq!(next_delay(every, 0.0), Duration::from_secs(285));
        assert_eq!(next_delay(every, 1.0), Duration::from_secs(315));
        for _ in 0..100 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
