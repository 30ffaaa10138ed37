//! `tether logs`: a zip of logs, journal, state and settings for support,
//! with every secret redacted and no key, token or credential file in it.

pub mod bundle;
pub mod redact;
