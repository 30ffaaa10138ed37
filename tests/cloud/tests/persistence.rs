//! `--state FILE` keeps everything across a restart.

use crate::support::*;
use anyhow::Result;
use reqwest::Method;
use serde_json::Value;
use tether_cloud::CloudConfig;

#[test]
fn state_survives_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cloud.db");
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

/// The demo world in `fixtures/state-round1.json`, a JSON state file as
/// tether-cloud wrote it before it kept its state in SQLite: one machine
/// (`legacy-1`) with an extension (`hello`) assigned.
mod round1 {
    pub const ADMIN_KEY: &str = "JS2LKwDqSJNgCDxm3ikx-B93lxh2rq06kxYZfiVOFiA";
    pub const TENANT: &str = "a1cda789-1d6a-4d50-9d4c-567d96031c62";
    pub const SUBSCRIPTION: &str = "e1054dbc-35dc-4f54-a756-213cee91b3f1";
    pub const ADMINISTRATOR: &str = "fbaa9ca0-6f30-4c48-bda7-811c1bd4c57f";
    pub const ADMINISTRATOR_SECRET: &str = "x5GopEsx-b7M8v9wgU5bpDFfZ0wDXijlTAESOboh";
}

fn client() -> Result<reqwest::blocking::Client> {
    // This test's own client (reqwest without a default provider).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::blocking::Client::builder().no_proxy().build()?)
}

fn admin_token(
    http: &reqwest::blocking::Client,
    url: &str,
    tenant: &str,
    id: &str,
    secret: &str,
) -> Result<String> {
    let body: Value = http
        .post(format!("{url}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", &format!("{url}/.default")),
        ])
        .send()?
        .json()?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no token: {body}"))
}

#[test]
fn a_json_state_of_an_earlier_version_is_migrated_and_kept_beside() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cloud.state");
    let json = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/state-round1.json"
    ))?;
    std::fs::write(&file, &json)?;
    let config = || CloudConfig {
        state_file: Some(file.clone()),
        ..CloudConfig::default()
    };
    let mut written: Vec<String> = Vec::new();
    for start in ["migrating", "from the database"] {
        let cloud = tether_cloud::BackgroundCloud::start(config())?;
        assert_eq!(cloud.admin_key, round1::ADMIN_KEY, "{start}");
        let http = client()?;
        // The principal's secret, its role assignment and the machine all
        // came across.
        let token = admin_token(
            &http,
            &cloud.url,
            round1::TENANT,
            round1::ADMINISTRATOR,
            round1::ADMINISTRATOR_SECRET,
        )?;
        let machine = format!(
            "{}/subscriptions/{}/resourceGroups/demo/providers/Microsoft.HybridCompute/machines/legacy-1",
            cloud.url,
            round1::SUBSCRIPTION
        );
        let got = http
            .get(format!("{machine}?{API}"))
            .bearer_auth(&token)
            .send()?;
        assert_eq!(got.status(), 200, "{start}");
        let got: Value = got.json()?;
        assert_eq!(
            got["properties"]["vmId"],
            "11111111-2222-3333-4444-555555555555"
        );
        let extension: Value = http
            .get(format!("{machine}/extensions/hello?{API}"))
            .bearer_auth(&token)
            .send()?
            .json()?;
        assert_eq!(
            extension["properties"]["settings"]["greeting"], "hi",
            "{extension}"
        );
        assert!(extension["properties"].get("protectedSettings").is_none());
        for earlier in &written {
            let got = http
                .get(format!("{}{earlier}?{API}", cloud.url))
                .bearer_auth(&token)
                .send()?;
            assert_eq!(got.status(), 200, "{start}: {earlier}");
        }
        // Writes go on from there.
        let new = format!("{machine}-{}", written.len() + 2);
        let put = http
            .put(format!("{new}?{API}"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"location": "local", "properties": {"vmId": uuid()}}))
            .send()?;
        assert!(put.status().is_success(), "{start}: {}", put.text()?);
        written.push(new.replace(&cloud.url, "").clone());
        drop(cloud);
        let head = std::fs::read(&file)?;
        assert!(
            head.starts_with(b"SQLite format 3\0"),
            "{start}: the state is a database now"
        );
    }
    // The JSON is kept as it was, beside it.
    let mut kept = file.clone().into_os_string();
    kept.push(".json-before-sqlite");
    assert_eq!(std::fs::read(kept)?, json);
    Ok(())
}

#[test]
fn every_acknowledged_write_survives_kill_9() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cloud.db");
    let state = file.display().to_string();
    acknowledged_writes_survive_kill_9(&["--state", &state], || {
        // The database holds the signing key and protected settings: its
        // owner's only, and so is the WAL a kill leaves beside it.
        #[cfg(unix)]
        for suffix in ["", "-wal"] {
            use std::os::unix::fs::PermissionsExt;
            let mut path = file.clone().into_os_string();
            path.push(suffix);
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{path:?}");
        }
        Ok(())
    })
}

/// A token for the bootstrapped demo world's administrator.
fn demo_admin_token(http: &reqwest::blocking::Client, url: &str, demo: &Value) -> Result<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    admin_token(
        http,
        url,
        &text(&demo["tenantId"]),
        &text(&demo["administrator"]["clientId"]),
        &text(&demo["administrator"]["secret"]),
    )
}

/// Four writers against `tether-cloud serve` with `store` (its state's
/// flags), killed with SIGKILL mid-write; `after_kill` looks at what it
/// left; a restart on the same state serves every acknowledged write.
pub fn acknowledged_writes_survive_kill_9(
    store: &[&str],
    after_kill: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let (server, info) = serve(&[store, &["--bootstrap"]].concat())?;
    let admin_key = info["adminKey"].clone();
    let url = info["url"].as_str().unwrap_or_default().to_string();
    let demo = &info["demo"];
    let http = client()?;
    let token = demo_admin_token(&http, &url, demo)?;
    let machines = format!(
        "/subscriptions/{}/resourceGroups/demo/providers/Microsoft.HybridCompute/machines",
        demo["subscriptionId"].as_str().unwrap_or_default()
    );
    // Four writers at once (creating machines, then changing one tag over
    // and over), each noting what was acknowledged; the writer that gets
    // the 200th answer kills the server at once, while the others' writes
    // are in flight.
    let acknowledged = std::sync::Mutex::new(Vec::<(String, u64)>::new());
    let killer = std::sync::Mutex::new(Some(server));
    std::thread::scope(|scope| {
        for writer in 0..4 {
            let (http, url, token, machines, acknowledged, killer) =
                (&http, &url, &token, &machines, &acknowledged, &killer);
            scope.spawn(move || {
                for n in 0u64.. {
                    let name = format!("w{writer}-{}", n.min(9));
                    let put = http
                        .put(format!("{url}{machines}/{name}?{API}"))
                        .bearer_auth(token)
                        .json(&serde_json::json!({
                            "location": "local",
                            "properties": {"vmId": format!("00000000-0000-0000-0000-{writer:04}{:08}", n.min(9))},
                            "tags": {"n": n.to_string()},
                        }))
                        .send();
                    let Ok(answer) = put else { return };
                    if !answer.status().is_success() {
                        return;
                    }
                    let Ok(mut acked) = acknowledged.lock() else { return };
                    acked.push((name, n));
                    if acked.len() >= 200
                        && let Some(mut server) = killer.lock().ok().and_then(|mut s| s.take())
                    {
                        let _ = server.0.kill();
                        let _ = server.0.wait();
                    }
                }
            });
        }
    });
    anyhow::ensure!(
        killer.lock().map(|s| s.is_none()).unwrap_or(false),
        "the writers stopped before the server was killed"
    );
    after_kill()?;
    let acknowledged = acknowledged.into_inner().unwrap_or_default();
    // The last acknowledged tag of every machine is what a restart serves.
    let mut last = std::collections::BTreeMap::new();
    for (name, n) in &acknowledged {
        let entry = last.entry(name.clone()).or_insert(*n);
        *entry = (*entry).max(*n);
    }
    let (_server, info) = serve(store)?;
    assert_eq!(info["adminKey"], admin_key);
    let url = info["url"].as_str().unwrap_or_default().to_string();
    let token = demo_admin_token(&http, &url, demo)?;
    for (name, n) in &last {
        let got = http
            .get(format!("{url}{machines}/{name}?{API}"))
            .bearer_auth(&token)
            .send()?;
        assert_eq!(got.status(), 200, "{name} was acknowledged, then lost");
        let got: Value = got.json()?;
        let kept: u64 = got["tags"]["n"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        // A write sent but not yet answered when the kill came may have
        // been kept too: never less than acknowledged.
        assert!(kept >= *n, "{name}: acknowledged n={n}, kept n={kept}");
    }
    Ok(())
}
