//! The Tether extension package: one tar file holding
//!
//! - `extension.toml`, the manifest (strict schema: unknown keys refused);
//! - the component (`component.wasm`), whose size and SHA-256 the manifest
//!   records;
//! - `extension.sig`, a detached ed25519 signature over a domain-separated
//!   message containing the manifest's exact bytes, naming the key that made
//!   it by its id (the first 8 bytes of the SHA-256 of the public key).
//!
//! Signing the manifest signs the component through its digest. The host and
//! `tether-ext` both use this crate, so what one signs the other verifies.
//!
//! Reading checks that the package is well formed before anything else: a
//! size cap on the whole and on each entry, regular files only (no links,
//! no directories), no path but the three names above, no duplicates.

mod archive;
mod id;
mod keys;
mod manifest;
mod schedule;
mod signature;

pub use archive::{Head, Package, ReadLimits, build, read, read_head};
pub use id::{ExtensionId, IdError};
pub use keys::{
    PublicKey, key_id, parse_public_key, public_key_line, read_private_key, write_private_key,
};
pub use manifest::{Capabilities, ComponentRef, Limits, MAX_CALL_TIMEOUT_MS, Manifest};
pub use schedule::{
    MAX_INTERVAL as MAX_SCHEDULE_INTERVAL, MIN_INTERVAL as MIN_SCHEDULE_INTERVAL, Schedule,
    format_duration, parse_duration,
};
pub use signature::{DOMAIN, Signature, sign, signed_message};

/// The manifest's file name in a package.
pub const MANIFEST: &str = "extension.toml";
/// The signature's file name in a package.
pub const SIGNATURE: &str = "extension.sig";

/// Why a package was refused; each check has its own variant, so the host
/// can name the check that failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackageError {
    #[error("the package is malformed: {0}")]
    Malformed(String),
    #[error("the manifest is invalid: {0}")]
    Manifest(String),
    #[error("the package is not signed (no {SIGNATURE}); sign it with `tether-ext sign`")]
    Unsigned,
    #[error("the signature is invalid: {0}")]
    BadSignature(String),
    #[error(
        "the package is signed by key {key_id}, which is not trusted for publisher {publisher}"
    )]
    UntrustedKey { key_id: String, publisher: String },
    #[error("the component does not match the manifest: {0}")]
    Digest(String),
}
