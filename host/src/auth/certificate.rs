//! A service principal's certificate, as Entra takes it: an RSA key and its
//! certificate, from a PEM file (the certificate and a PKCS#8 or PKCS#1
//! key) or a PFX/PKCS#12 file, whose password comes from a file or the
//! environment and never from the command line (where `ps` shows it).
//! EC and Ed25519 keys are refused: Entra signs in with RSA certificates.

use anyhow::{Context, Result, bail};
use std::path::Path;
use tether_cloud_api::jwt::{RsaPublicKey, RsaSigner};

/// The environment variable a PFX file's password may come from.
pub const PASSWORD_ENV: &str = "TETHER_SERVICE_PRINCIPAL_CERT_PASSWORD";

/// What signs client assertions, and the certificate that names it.
pub struct ClientCertificate {
    pub signer: RsaSigner,
    pub cert_der: Vec<u8>,
}

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

fn refuse_algorithm(oid: &str, path: &Path) -> anyhow::Error {
    let family = match oid {
        "1.2.840.10045.2.1" => "an EC key",
        "1.3.101.112" => "an Ed25519 key",
        _ => "a key that is not RSA",
    };
    anyhow::anyhow!(
        "{} holds {family} ({oid}); Entra signs service principals in with RSA certificates only (2048 bits or more): make an RSA certificate (tether-cloud admin principal-create --certificate generate makes one)",
        path.display()
    )
}

/// Reads the certificate at `path`; `password_file` (or [`PASSWORD_ENV`])
/// unlocks a PFX.
pub fn load(path: &Path, password_file: Option<&Path>) -> Result<ClientCertificate> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("could not read the certificate file {}", path.display()))?;
    let loaded = if bytes.starts_with(b"-----BEGIN")
        || bytes.trim_ascii_start().starts_with(b"-----BEGIN")
    {
        from_pem(&String::from_utf8_lossy(&bytes), path)?
    } else {
        from_pfx(&bytes, &password(path, password_file)?, path)?
    };
    // The key must be the certificate's, or Entra refuses every assertion.
    let (_, cert) = x509_parser::parse_x509_certificate(&loaded.cert_der)
        .map_err(|e| anyhow::anyhow!("the certificate in {} is not X.509: {e}", path.display()))?;
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    if oid != RSA_ENCRYPTION {
        return Err(refuse_algorithm(&oid, path));
    }
    if RsaPublicKey::from_der(spki.raw) != Some(loaded.signer.public_key()) {
        bail!(
            "the private key in {} is not the certificate's (their public keys differ)",
            path.display()
        );
    }
    Ok(loaded)
}

fn password(path: &Path, file: Option<&Path>) -> Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("could not read the password file {}", file.display()))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    match std::env::var(PASSWORD_ENV) {
        Ok(password) => Ok(password),
        Err(_) => bail!(
            "{} is a PFX/PKCS#12 file: give its password in a file (--service-principal-cert-password-file FILE) or in {PASSWORD_ENV}, never on the command line",
            path.display()
        ),
    }
}

fn from_pem(text: &str, path: &Path) -> Result<ClientCertificate> {
    let blocks = tether_cloud_api::pem::blocks(text);
    let cert_der = blocks
        .iter()
        .find(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der.clone())
        .with_context(|| {
            format!(
                "{} holds no certificate (-----BEGIN CERTIFICATE-----); give the PEM with both the certificate and its key",
                path.display()
            )
        })?;
    let unreadable = |what: &str| {
        anyhow::anyhow!(
            "the {what} in {} could not be read as an RSA key of 2048 bits or more",
            path.display()
        )
    };
    let signer = if let Some((_, der)) = blocks.iter().find(|(l, _)| l == "PRIVATE KEY") {
        let oid = pkcs8_algorithm(der).unwrap_or_default();
        if oid != RSA_ENCRYPTION {
            return Err(refuse_algorithm(&oid, path));
        }
        RsaSigner::from_pkcs8(der).map_err(|_| unreadable("PKCS#8 key"))?
    } else if let Some((_, der)) = blocks.iter().find(|(l, _)| l == "RSA PRIVATE KEY") {
        RsaSigner::from_pkcs1(der).map_err(|_| unreadable("PKCS#1 key"))?
    } else if blocks.iter().any(|(l, _)| l == "EC PRIVATE KEY") {
        return Err(refuse_algorithm("1.2.840.10045.2.1", path));
    } else if blocks.iter().any(|(l, _)| l == "ENCRYPTED PRIVATE KEY") {
        bail!(
            "the private key in {} is encrypted; give it as a PFX file with its password in a file or {PASSWORD_ENV}, or decrypt the PEM",
            path.display()
        );
    } else {
        bail!(
            "{} holds no private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----); give the PEM with both the certificate and its key",
            path.display()
        );
    };
    Ok(ClientCertificate { signer, cert_der })
}

/// The algorithm OID of a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_algorithm(der: &[u8]) -> Option<String> {
    use x509_parser::der_parser::ber::BerObjectContent;
    use x509_parser::der_parser::parse_der;
    let (_, info) = parse_der(der).ok()?;
    let BerObjectContent::Sequence(items) = &info.content else {
        return None;
    };
    let BerObjectContent::Sequence(algorithm) = &items.get(1)?.content else {
        return None;
    };
    algorithm
        .first()?
        .as_oid()
        .ok()
        .map(|oid| oid.to_id_string())
}

fn from_pfx(bytes: &[u8], password: &str, path: &Path) -> Result<ClientCertificate> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        bytes,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "{} is neither a PEM file nor a PFX/PKCS#12 file this password opens ({e}); check the file and its password",
            path.display()
        )
    })?;
    let (_, chain) = store.private_key_chain().with_context(|| {
        format!(
            "{} holds no private key with its certificate",
            path.display()
        )
    })?;
    let cert_der = chain
        .certs()
        .first()
        .map(|c| c.as_der().to_vec())
        .with_context(|| format!("{} holds a key but no certificate", path.display()))?;
    let key = chain.key().as_der();
    let oid = pkcs8_algorithm(key).unwrap_or_default();
    if oid != RSA_ENCRYPTION {
        return Err(refuse_algorithm(&oid, path));
    }
    let signer = RsaSigner::from_pkcs8(key).map_err(|_| {
        anyhow::anyhow!(
            "the key in {} could not be read as an RSA key of 2048 bits or more",
            path.display()
        )
    })?;
    Ok(ClientCertificate { signer, cert_der })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_pem_is_refused_not_a_panic() {
        for text in [
            "-----BEGIN X-----END X-----",
            "-----BEGIN -----",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(from_pem(text, Path::new("x.pem")).is_err(), "{text}");
        }
    }
}
