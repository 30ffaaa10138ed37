//! The gallery keeps packages byte for byte and says how to check them.

use crate::support::*;
use anyhow::Result;
use serde_json::{Value, json};
use sha2::Digest;

#[test]
fn packages_download_unaltered_with_length_and_digest() -> Result<()> {
    let w = World::start()?;
    let package: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let meta = w
        .admin
        .upload_package("Contoso", "Inventory", "1.0.0", package.clone())?;
    let url = meta["url"].as_str().unwrap_or_default().to_string();
    let response = w.http.get(&url).send()?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "100000");
    let sha = hex::encode(sha2::Sha256::digest(&package));
    assert_eq!(response.headers()["x-ms-content-sha256"], sha.as_str());
    assert!(
        response.headers()["digest"]
            .to_str()?
            .starts_with("sha-256=")
    );
    assert_eq!(response.bytes()?.to_vec(), package);
    assert_eq!(
        w.http
            .get(format!("{}/gallery/Contoso/Inventory/9.9.9", w.url()))
            .send()?
            .status(),
        404
    );

    // A desired extension names its package.
    let (machine, key) = w.connect("m1", "v1")?;
    w.admin.post("/extensions", json!({"machineId": machine["id"], "name": "inv", "publisher": "Contoso", "type": "Inventory", "version": "1.0.0"}))?;
    let desired: Value = w
        .http
        .get(format!("{}/agent/v1/extensions", w.url()))
        .bearer_auth(w.machine_token(&machine, &key)?)
        .send()?
        .json()?;
    let wanted = &desired["extensions"][0];
    assert_eq!(wanted["packageUrl"], url.as_str());
    assert_eq!(wanted["packageSha256"], sha.as_str());
    assert_eq!(wanted["packageSize"], 100_000);
    // Uploads need the admin key.
    let anonymous = w
        .http
        .put(format!("{}/admin/gallery/Contoso/Evil/1.0.0", w.url()))
        .body("x")
        .send()?;
    assert_arm_error(anonymous, 401, "AdminAuthenticationFailed")?;
    Ok(())
}
