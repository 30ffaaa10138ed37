//! tether-cloud as the unmodified Azure SDK for Python sees it
//! ([`tether_test_artifacts::azure_sdk`] installs it): each test runs a
//! script of its own against a TLS tether-cloud.

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tether_cloud::{BackgroundCloud, CloudConfig};

fn python() -> Result<PathBuf> {
    tether_test_artifacts::azure_sdk::python().map_err(anyhow::Error::msg)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A TLS tether-cloud with its demo tenant, its CA file beside.
struct TlsCloud {
    cloud: BackgroundCloud,
    demo: Value,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsCloud {
    fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let ca = dir.path().join("ca.pem");
        let cloud = BackgroundCloud::start(CloudConfig {
            page_size: 2,
            tls_ca_file: Some(ca.clone()),
            device_code_interval: 1,
            ..CloudConfig::default()
        })?;
        let demo = cloud.admin()?.bootstrap()?;
        Ok(Self {
            cloud,
            demo,
            ca,
            _dir: dir,
        })
    }

    /// Runs `tests/azure_sdk/{script}` with the cloud's coordinates and the
    /// administrator principal in its environment; its JSON output.
    fn run(&self, script: &str) -> Result<Value> {
        self.run_with(script, &[])
    }

    /// [`run`](Self::run) with more of the environment.
    fn run_with(&self, script: &str, env: &[(&str, &str)]) -> Result<Value> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/azure_sdk")
            .join(script);
        let out = Command::new(python()?)
            .arg(&path)
            .envs(env.iter().copied())
            .env("TC_URL", &self.cloud.url)
            .env("TC_CA", &self.ca)
            // What requests (under azure-core and MSAL) trusts.
            .env("REQUESTS_CA_BUNDLE", &self.ca)
            .env("TC_TENANT", text(&self.demo["tenantId"]))
            .env("TC_SUBSCRIPTION", text(&self.demo["subscriptionId"]))
            .env(
                "TC_CLIENT_ID",
                text(&self.demo["administrator"]["clientId"]),
            )
            .env(
                "TC_CLIENT_SECRET",
                text(&self.demo["administrator"]["secret"]),
            )
            .env("TC_API_VERSION", tether_cloud_api::arm::API_VERSION)
            .env("TC_OLDER_API_VERSION", "2024-07-10")
            .env("TC_ADMIN_KEY", &self.cloud.admin_key)
            .env(
                "TC_OPERATION_TIMEOUT",
                tether_cloud::OPERATION_TIMEOUT.to_string(),
            )
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .output()?;
        ensure!(
            out.status.success(),
            "{script} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .with_context(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[test]
fn azure_mgmt_hybridcompute_drives_machines_over_tls() -> Result<()> {
    let cloud = TlsCloud::start()?;
    let seen = cloud.run("hybridcompute.py")?;
    assert_eq!(seen["created"][0]["name"], "sdk-1", "{seen}");
    assert_eq!(
        seen["created"][0]["type"],
        "Microsoft.HybridCompute/machines"
    );
    assert!(
        text(&seen["got"]["id"])
            .ends_with("/resourceGroups/demo/providers/Microsoft.HybridCompute/machines/sdk-1"),
        "{seen}"
    );
    assert_eq!(seen["got"]["vmId"], "00000000-0000-4000-8000-000000000000");
    // Timestamps the SDK parsed as datetimes.
    assert!(text(&seen["got"]["createdAt"]).starts_with("20"), "{seen}");
    assert!(
        text(&seen["got"]["lastStatusChange"]).starts_with("20"),
        "{seen}"
    );
    assert_eq!(seen["updatedTags"]["env"], "sdk");
    // Three machines at two a page: the SDK followed nextLink.
    assert_eq!(
        seen["listedInGroup"],
        serde_json::json!(["sdk-1", "sdk-2", "sdk-3"]),
        "{seen}"
    );
    assert_eq!(seen["listedInSubscription"], seen["listedInGroup"]);
    assert_eq!(seen["missing"]["type"], "ResourceNotFoundError", "{seen}");
    assert_eq!(seen["unservedVersion"]["status"], 400, "{seen}");
    assert_eq!(
        seen["unservedVersion"]["code"],
        "InvalidApiVersionParameter"
    );
    Ok(())
}

#[test]
fn azure_identity_signs_in_to_tether_cloud_as_an_authority() -> Result<()> {
    let cloud = TlsCloud::start()?;
    let seen = cloud.run("hybridcompute.py")?;
    assert_eq!(seen["created"].as_array().map(Vec::len), Some(3));
    let seen = cloud.run("identity.py")?;
    assert!(seen["tokenLength"].as_u64().unwrap_or(0) > 100, "{seen}");
    assert!(seen["expiresOn"].as_u64().unwrap_or(0) > 0, "{seen}");
    assert_eq!(
        seen["machines"],
        serde_json::json!(["sdk-1", "sdk-2", "sdk-3"])
    );
    // Discovery of a tenant tether-cloud does not hold is Entra's error.
    let ca = std::fs::read(&cloud.ca)?;
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .no_proxy()
        .build()?;
    let unknown = http
        .get(format!(
            "{}/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration",
            cloud.cloud.url
        ))
        .send()?;
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json()?;
    assert_eq!(body["error"], "invalid_tenant", "{body}");
    Ok(())
}

#[test]
fn azure_mgmt_hybridcompute_follows_long_running_operations_to_their_end() -> Result<()> {
    let cloud = TlsCloud::start()?;
    let seen = cloud.run("lro.py")?;
    // The SDK's own default, which tether-cloud serves.
    let newest = tether_cloud_api::arm::SUPPORTED_API_VERSIONS
        .last()
        .copied()
        .unwrap_or_default();
    assert_eq!(seen["defaultApiVersion"], newest, "{seen}");
    assert!(tether_cloud_api::arm::machine_delete_is_long_running(
        newest
    ));
    assert_eq!(seen["machineDeletion"], "Succeeded", "{seen}");
    assert_eq!(seen["afterDeletion"], "ResourceNotFoundError");
    // At 2024-07-10 an extension's creation waits for its machine, which
    // never answers here: it fails at tether-cloud's timeout rather than
    // running forever, and its deletion then ends at once.
    assert_eq!(seen["creationWhileWaiting"], "InProgress", "{seen}");
    assert_eq!(seen["creation"]["status"], "Failed", "{seen}");
    assert_eq!(seen["creation"]["code"], "OperationTimedOut", "{seen}");
    assert_eq!(seen["extensionDeletion"], "Succeeded", "{seen}");
    assert_eq!(seen["extensionsLeft"], serde_json::json!([]));
    Ok(())
}

#[test]
fn azure_identity_signs_in_with_rsa_certificates_from_pem_and_pfx() -> Result<()> {
    let cloud = TlsCloud::start()?;
    let admin = cloud.cloud.admin()?;
    let sp = admin.post(
        "/servicePrincipals",
        serde_json::json!({"tenantId": text(&cloud.demo["tenantId"]), "certificate": "generate"}),
    )?;
    admin.post(
        "/roleAssignments",
        serde_json::json!({
            "principalId": sp["clientId"],
            "role": "reader",
            "scope": format!("/subscriptions/{}", text(&cloud.demo["subscriptionId"])),
        }),
    )?;
    let pem = cloud._dir.path().join("sp.pem");
    std::fs::write(&pem, text(&sp["certificatePem"]))?;
    let seen = cloud.run_with(
        "certificate.py",
        &[
            ("TC_CERT_CLIENT_ID", &text(&sp["clientId"])),
            ("TC_CERT_PEM", &pem.display().to_string()),
        ],
    )?;
    assert_eq!(seen["keyType"], "RSAPrivateKey", "{seen}");
    assert_eq!(seen["keyBits"], 2048);
    for form in ["pem", "pfx"] {
        let claims = tether_cloud_api::jwt::Unverified::parse(&text(&seen[form]["token"]))?.claims;
        assert_eq!(claims["appid"], sp["clientId"], "{form}: {claims}");
        assert_eq!(seen[form]["machines"], serde_json::json!([]), "{seen}");
    }
    Ok(())
}

#[test]
fn azure_identity_device_code_and_msal_accounts_with_rotating_refresh_tokens() -> Result<()> {
    let cloud = TlsCloud::start()?;
    let user = text(&cloud.demo["user"]["username"]);
    let seen = cloud.run_with(
        "device_code.py",
        &[
            ("TC_USER", &user),
            // The Azure CLI's public client id, as operators' tools use.
            ("TC_PUBLIC_CLIENT", "04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
        ],
    )?;
    let tenant = text(&cloud.demo["tenantId"]);
    assert_eq!(seen["record"]["username"], user.as_str(), "{seen}");
    assert_eq!(seen["record"]["tenantId"], tenant.as_str());
    assert!(
        text(&seen["record"]["homeAccountId"]).ends_with(&format!(".{tenant}")),
        "client_info's uid.utid: {seen}"
    );
    assert_eq!(seen["silentFromCache"], true);
    let claims = &seen["idTokenClaims"];
    assert_eq!(
        claims["aud"], "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "{seen}"
    );
    assert_eq!(claims["tid"], tenant.as_str());
    assert_eq!(claims["preferred_username"], user.as_str());
    assert_eq!(
        claims["iss"],
        format!("{}/{tenant}/v2.0", cloud.cloud.url).as_str()
    );
    assert_eq!(seen["accounts"], serde_json::json!([user]));
    assert_eq!(seen["renewed"], true, "{seen}");
    assert_eq!(seen["rotated"], true, "{seen}");
    assert_eq!(seen["oldRefresh"], "invalid_grant", "{seen}");
    assert_eq!(seen["unknownInstance"], "invalid_instance", "{seen}");
    Ok(())
}
