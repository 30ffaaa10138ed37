//! `--tls`: HTTPS with a CA the client must be told to trust.

use anyhow::Result;
use tether_cloud::{BackgroundCloud, CloudConfig};

#[test]
fn https_with_a_generated_ca() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let ca_file = dir.path().join("ca.pem");
    let cloud = BackgroundCloud::start(CloudConfig {
        tls_ca_file: Some(ca_file.clone()),
        ..CloudConfig::default()
    })?;
    assert!(cloud.url.starts_with("https://127.0.0.1:"), "{}", cloud.url);
    let ca = std::fs::read_to_string(&ca_file)?;
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));

    let trusting = reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes())?])
        .build()?;
    let metadata: serde_json::Value = trusting.get(cloud.metadata_url()).send()?.json()?;
    assert_eq!(metadata["resourceManager"], format!("{}/", cloud.url));
    // The admin API works over TLS too.
    assert!(cloud.admin()?.bootstrap()?["tenantId"].is_string());

    let strict = reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_certs_only(Vec::<reqwest::Certificate>::new())
        .build()?;
    assert!(
        strict.get(cloud.metadata_url()).send().is_err(),
        "an untrusted CA must fail the handshake"
    );
    Ok(())
}
