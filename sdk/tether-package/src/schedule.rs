//! `[[schedule]]`: commands the host service runs on an interval.
//!
//! ```toml
//! [[schedule]]
//! every = "5m"
//! command = "collect"
//! args = ["--full"]
//! skip_when_disconnected = true
//! ```

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One scheduled command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The interval, as written: `30s`, `5m`, `1h`, `1d`.
    pub every: String,
    /// The `invoke` command to run.
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Skip runs while the machine is not connected to its cloud (an
    /// extension that reports to the cloud has nothing to do then).
    #[serde(default)]
    pub skip_when_disconnected: bool,
}

/// The most entries one manifest may have.
pub const MAX_SCHEDULES: usize = 16;
/// The shortest interval any manifest may ask for; the operator's
/// `extensions.schedules.mininterval` may only raise it.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// The longest interval (a week): longer is a calendar's job.
pub const MAX_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

impl Schedule {
    /// The interval; checked when the manifest was parsed.
    pub fn interval(&self) -> Duration {
        parse_duration(&self.every).unwrap_or(MAX_INTERVAL)
    }

    /// How an operator names it: the command and its arguments.
    pub fn label(&self) -> String {
        std::iter::once(self.command.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        let every =
            parse_duration(&self.every).map_err(|e| format!("schedule `{}`: {e}", self.command))?;
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&every) {
            return Err(format!(
                "schedule `{}`: every = \"{}\" is outside 10s to 7d",
                self.command, self.every
            ));
        }
        if self.command.is_empty()
            || self.command.len() > 128
            || self.command.contains(char::is_whitespace)
        {
            return Err("a schedule's command is one word of at most 128 bytes".into());
        }
        if self.args.len() > 32 || self.args.iter().any(|a| a.len() > 1024) {
            return Err(format!(
                "schedule `{}`: at most 32 arguments of at most 1024 bytes each",
                self.command
            ));
        }
        Ok(())
    }
}

/// Parses `90s`, `5m`, `2h`, `1d` (one number, one unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 5m, 1h or 1d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}` is not a duration such as 30s, 5m, 1h or 1d"
            ));
        }
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

/// Writes a duration the way [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    let s = duration.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_alike() {
        for (text, secs) in [
            ("30s", 30),
            ("5m", 300),
            ("2h", 7200),
            ("1d", 86_400),
            ("90s", 90),
        ] {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)));
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
        }
        for bad in [
            "",
            "5",
            "m",
            "5 minutes",
            "-5m",
            "5M",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_are_checked() {
        let entry = |every: &str, command: &str| Schedule {
            every: every.into(),
            command: command.into(),
            args: vec![],
            skip_when_disconnected: false,
        };
        assert!(entry("5m", "collect").check().is_ok());
        assert!(
            entry("5s", "collect")
                .check()
                .is_err_and(|e| e.contains("10s to 7d"))
        );
        assert!(entry("8d", "collect").check().is_err());
        assert!(entry("5m", "").check().is_err());
        assert!(entry("5m", "two words").check().is_err());
    }
}
