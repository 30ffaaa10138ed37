//! `certsync`: fetches a PEM certificate bundle from the `url` setting (an
//! origin its manifest declares) and keeps it at the `path` setting, inside
//! its granted write path, hourly (see `extension.toml`) and on demand
//! (`invoke sync`). The file is replaced atomically (a sibling written,
//! then renamed over it) and only when the bundle changed; what is not a
//! bundle of certificates is never written. The status says whether it
//! changed and when its earliest certificate expires: a warning within
//! `warnDays` (default 30), an error once expired.

mod der;

use tether_sdk::{Error, Extension, StatusState, http, settings};

struct CertSync;

/// The certificates of a PEM bundle, as DER.
fn certificates(pem: &str) -> Result<Vec<Vec<u8>>, Error> {
    use base64::Engine;
    let mut found = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = body.find("-----END CERTIFICATE-----").ok_or_else(|| {
            Error::invalid_argument("a certificate in the bundle has no END line")
        })?;
        let text: String = body[..end].split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| Error::invalid_argument(format!("a certificate is not base64: {e}")))?;
        found.push(der);
        rest = &body[end..];
    }
    if found.is_empty() {
        return Err(Error::invalid_argument(
            "the bundle holds no PEM certificate; nothing was written",
        ));
    }
    Ok(found)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn write_atomically(path: &str, bytes: &[u8]) -> Result<(), Error> {
    let temporary = format!("{path}.certsync-new");
    let fail = |what: &str, e: std::io::Error| {
        Error::new(
            "io",
            format!("could not {what} {path}: {e} (is it inside the granted write path?)"),
        )
    };
    std::fs::write(&temporary, bytes).map_err(|e| fail("write next to", e))?;
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        fail("replace", e)
    })
}

fn sync() -> Result<String, Error> {
    let url: String = settings::get("url")?.ok_or_else(|| {
        Error::invalid_argument("the `url` setting (the bundle's URL) is required")
    })?;
    let path: String =
        settings::get("path")?.unwrap_or_else(|| "/var/lib/certsync/bundle.pem".into());
    let warn_days: i64 = settings::get("warnDays")?.unwrap_or(30);
    let response = http::get(&url)?;
    if response.status != 200 {
        return Err(Error::new(
            "unavailable",
            format!("{url} answered {}; the bundle was kept", response.status),
        ));
    }
    let text = String::from_utf8(response.body)
        .map_err(|_| Error::invalid_argument("the bundle is not text; nothing was written"))?;
    let certs = certificates(&text)?;
    let expiries: Vec<i64> = certs
        .iter()
        .map(|c| {
            der::not_after(c).ok_or_else(|| {
                Error::invalid_argument("a certificate in the bundle could not be read")
            })
        })
        .collect::<Result<_, _>>()?;
    let earliest = expiries.iter().copied().min().unwrap_or(0);
    let changed = std::fs::read(&path)
        .map(|old| old != text.as_bytes())
        .unwrap_or(true);
    if changed {
        write_atomically(&path, text.as_bytes())?;
    }
    let days = (earliest - now()).div_euclid(86_400);
    let summary = format!(
        "{path} {}: {} certificates, the earliest expiring {} ({days} days)",
        if changed { "updated" } else { "unchanged" },
        certs.len(),
        der::date(earliest),
    );
    let state = if earliest <= now() {
        StatusState::Error
    } else if days < warn_days {
        StatusState::Warning
    } else {
        StatusState::Success
    };
    tether_sdk::report_status(state, &summary);
    Ok(serde_json::json!({
        "path": path,
        "changed": changed,
        "certificates": certs.len(),
        "earliestExpiry": der::date(earliest),
        "daysLeft": days,
    })
    .to_string())
}

impl Extension for CertSync {
    fn invoke(command: &str, _args: &[String]) -> Result<String, Error> {
        match command {
            "sync" => sync(),
            other => Err(Error::unknown_command(other)),
        }
    }
}

tether_sdk::export_extension!(CertSync);
