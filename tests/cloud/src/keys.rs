//! RSA keys and certificates, as Entra uses them: tether-cloud's token
//! signing key (published with `kid` and `x5t`) and the certificates
//! `tether-cloud admin` makes for service principals. Keys are PKCS#8 v1
//! (`BEGIN PRIVATE KEY`, no public key inside), which OpenSSL and Python's
//! cryptography read.
//!
//! Generation uses the `rsa` crate; signing and verifying use ring. The
//! `rsa` crate's private-key operations are not constant-time (RUSTSEC-2023-0071):
//! acceptable for a local control plane's test keys, which is all it makes.

use anyhow::{Context, Result};
use rsa::pkcs8::EncodePrivateKey as _;
use tether_cloud_api::jwt::{self, RsaSigner};

const BITS: usize = 2048;

/// A new RSA private key, PKCS#8 v1 DER.
pub fn generate_pkcs8() -> Result<Vec<u8>> {
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, BITS)
        .context("could not generate an RSA key")?;
    Ok(key
        .to_pkcs8_der()
        .context("could not encode the RSA key")?
        .as_bytes()
        .to_vec())
}

/// A self-signed certificate for `pkcs8`, naming `name`; its DER and PEM.
pub fn self_signed(pkcs8: &[u8], name: &str) -> Result<(Vec<u8>, String)> {
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.to_vec());
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
        .context("rcgen refused the RSA key")?;
    let mut params = rcgen::CertificateParams::new(vec![format!("{name}.tether-cloud.invalid")])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key)?;
    Ok((cert.der().to_vec(), cert.pem()))
}

/// tether-cloud's token signing key and its certificate.
pub struct TokenKey {
    pub signer: RsaSigner,
    pub cert_der: Vec<u8>,
    /// Entra's `kid` is the certificate's `x5t`.
    pub kid: String,
}

impl TokenKey {
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let signer =
            RsaSigner::from_pkcs8(pkcs8).context("the state file's signing key is damaged")?;
        let (cert_der, _) = self_signed(pkcs8, "tether-cloud token signing")?;
        Ok(Self {
            signer,
            kid: jwt::thumbprint(&cert_der),
            cert_der,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_pkcs8_v1_and_sign_what_their_certificate_verifies() -> Result<()> {
        let pkcs8 = generate_pkcs8()?;
        // PrivateKeyInfo ::= SEQUENCE { version INTEGER (0 = v1), … }
        let version_at = if pkcs8[1] & 0x80 != 0 {
            2 + usize::from(pkcs8[1] & 0x7f)
        } else {
            2
        };
        assert_eq!(&pkcs8[version_at..version_at + 3], &[0x02, 0x01, 0x00]);
        let key = TokenKey::from_pkcs8(&pkcs8)?;
        let token = jwt::sign(
            &jwt::Header::eddsa(),
            &serde_json::json!({"exp": 10}),
            &key.signer,
        );
        let (_, cert) = x509_parser::parse_x509_certificate(&key.cert_der)?;
        let public = jwt::RsaPublicKey::from_der(cert.public_key().raw)
            .context("the certificate's key is RSA")?;
        jwt::Unverified::parse(&token)?.verify(&public, 0)?;
        Ok(())
    }
}
