//! The checks an install or update passes, in this order, before a byte of
//! the component is compiled: well formed → signed by a key trusted for the
//! publisher → digest and size → `extensions.enabled` → policy (blocklist
//! wins; a non-empty allowlist is exclusive; monitor mode admits only the
//! monitoring category) → no downgrade (below the highest version ever
//! installed here, unless a local operator allows it) → capabilities within what the
//! operator allows (each capability's own module under `capabilities/`).
//! Each refusal names its check.

use super::trust::TrustStore;
use crate::config::{Mode, Settings};
use serde::Serialize;
use tether_package::{Package, PackageError, ReadLimits};

/// A refused install, naming the check.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("refused by the {check} check: {message}")]
pub struct Refusal {
    pub check: &'static str,
    pub message: String,
}

fn refuse(check: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        check,
        message: message.into(),
    }
}

/// Runs every check; returns the package, ready to be installed.
pub fn admit(
    bytes: &[u8],
    settings: &Settings,
    files: &crate::runtime::FilePolicy,
    trust: &TrustStore,
    floor: Option<&semver::Version>,
) -> Result<Package, Refusal> {
    let package = tether_package::read(bytes, ReadLimits::default())
        .map_err(|e| refuse("package", e.to_string()))?;
    let m = &package.manifest;
    package.verify_signature(&trust.keys_for(&m.publisher)).map_err(|e| match e {
        PackageError::UntrustedKey { .. } | PackageError::Unsigned => refuse("trust", format!("{e}; trust the publisher's key with `tether extension trust add --publisher {} --key …`", m.publisher)),
        other => refuse("signature", other.to_string()),
    })?;
    package
        .check_component()
        .map_err(|e| refuse("digest", e.to_string()))?;
    if !settings.extensions.enabled {
        return Err(refuse(
            "extensions.enabled",
            "extensions are disabled on this machine (extensions.enabled is false)",
        ));
    }
    settings
        .policy_allows(&m.id())
        .map_err(|why| refuse("policy", why))?;
    if settings.config.mode == Mode::Monitor && !m.category.eq_ignore_ascii_case("monitoring") {
        return Err(refuse(
            "policy",
            format!(
                "config.mode is monitor, which admits only the monitoring category; {} is `{}`",
                m.id(),
                m.category
            ),
        ));
    }
    if let Some(floor) = floor
        && m.version < *floor
    {
        return Err(refuse(
            "version",
            format!(
                "{} {floor} is or was installed on this machine; {} would be a downgrade. Only a local operator may allow one: `tether extension install --allow-downgrade FILE`",
                m.id(),
                m.version
            ),
        ));
    }
    let provided = crate::runtime::CONTRACTS_PROVIDED;
    let compatible = provided
        .iter()
        .filter_map(|v| semver::Version::parse(v).ok())
        .any(|v| v.major == m.contract.major && v.minor == m.contract.minor && m.contract <= v);
    if !compatible {
        return Err(refuse(
            "contract",
            format!(
                "{} was built for tether:extension@{}; this host provides {}",
                m.id(),
                m.contract,
                provided.join(" and ")
            ),
        ));
    }
    let operator = super::capabilities::Operator { settings, files };
    let mut scratch = crate::runtime::ExtensionSpec::new(m.id(), std::path::PathBuf::new());
    super::capabilities::grant_all(m, &operator, &mut scratch)
        .map_err(|(check, why)| refuse(check, why))?;
    Ok(package)
}
