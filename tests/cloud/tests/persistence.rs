//! `--state FILE` keeps everything across a restart.

use crate::support::*;
use anyhow::Result;
use reqwest::Method;
use serde_json::Value;
use tether_cloud::CloudConfig;

#[test]
fn state_survives_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cloud.json");
    let config = || CloudConfig {
        state_file: Some(file.clone()),
        ..CloudConfig::default()
    };
    let (admin_key, token, demo) = {
        let w = World::with(config())?;
        w.connect("m1", "v1")?;
        (w.cloud.admin_key.clone(), w.admin_token()?, w.demo.clone())
    };
    assert!(file.exists());
    // A new server on a new port, from the same file.
    let cloud = tether_cloud::BackgroundCloud::start(config())?;
    assert_eq!(cloud.admin_key, admin_key);
    let http = reqwest::blocking::Client::builder().no_proxy().build()?;
    let path = format!(
        "/subscriptions/{}/resourceGroups/demo/providers/Microsoft.HybridCompute/machines/m1",
        demo["subscriptionId"].as_str().unwrap_or_default()
    );
    // The old token is still signed by the same key, though for the old
    // address' audience; a fresh one works.
    let fresh: Value = http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            cloud.url,
            demo["tenantId"].as_str().unwrap_or_default()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_id",
                demo["administrator"]["clientId"]
                    .as_str()
                    .unwrap_or_default(),
            ),
            (
                "client_secret",
                demo["administrator"]["secret"].as_str().unwrap_or_default(),
            ),
            ("scope", &format!("{}/.default", cloud.url)),
        ])
        .send()?
        .json()?;
    let fresh = fresh["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let got = http
        .request(Method::GET, format!("{}{path}?{API}", cloud.url))
        .bearer_auth(&fresh)
        .send()?;
    assert_eq!(got.status(), 200);
    assert_eq!(got.json::<Value>()?["name"], "m1");
    let old_claims = tether_cloud_api::jwt::Unverified::parse(&token)?;
    assert!(old_claims.claims["aud"].as_str().is_some());
    // A damaged file is refused with a clear message, not overwritten.
    drop(cloud);
    std::fs::write(&file, b"{ not json")?;
    let err = match tether_cloud::BackgroundCloud::start(config()) {
        Ok(_) => anyhow::bail!("a damaged state file was accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("is not a tether-cloud state file"), "{err}");
    assert_eq!(std::fs::read(&file)?, b"{ not json");
    Ok(())
}
