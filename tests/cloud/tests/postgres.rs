//! tether-cloud on PostgreSQL (`--database`): the state kept there across
//! a `kill -9`, and two replicas serving one fleet from one database.

use crate::persistence::acknowledged_writes_survive_kill_9;
use crate::support::*;
use anyhow::{Context, Result};

/// A fresh database on the tests' PostgreSQL (`TETHER_TEST_POSTGRES`, the
/// URL of its maintenance database, which `.ci/run` starts), or `None`
/// when there is none to test against and `TETHER_POSTGRES_TESTS` does not
/// insist there is.
fn fresh_database() -> Result<Option<String>> {
    let Ok(server) = std::env::var("TETHER_TEST_POSTGRES") else {
        anyhow::ensure!(
            std::env::var_os("TETHER_POSTGRES_TESTS").is_none(),
            "TETHER_POSTGRES_TESTS is set, but TETHER_TEST_POSTGRES (the PostgreSQL to test against) is not: run the tests with .ci/run"
        );
        eprintln!("skipped: no PostgreSQL to test against (TETHER_TEST_POSTGRES)");
        return Ok(None);
    };
    let name = format!("tether_test_{}", uuid());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .context("could not reach the tests' PostgreSQL")?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .context("could not create a database for the test")
    })?;
    let mut url = url::Url::parse(&server)?;
    url.set_path(&name);
    Ok(Some(url.to_string()))
}

#[test]
fn every_acknowledged_write_survives_kill_9_on_postgres() -> Result<()> {
    let Some(database) = fresh_database()? else {
        return Ok(());
    };
    acknowledged_writes_survive_kill_9(&["--database", &database], || Ok(()))
}

#[test]
fn the_database_password_stays_out_of_what_tether_cloud_says() -> Result<()> {
    let Some(database) = fresh_database()? else {
        return Ok(());
    };
    let (_served, info) = serve(&["--database", &database])?;
    let state = info["state"].as_str().unwrap_or_default();
    assert!(
        state.starts_with("PostgreSQL postgres://tether:***@127.0.0.1:"),
        "{state}"
    );
    // A wrong password is refused with what failed, and not echoed.
    let mut wrong = url::Url::parse(&database)?;
    let _ = wrong.set_password(Some("not-the-password"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tether-cloud"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TETHER_CLOUD_DATABASE", wrong.as_str())
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not connect to PostgreSQL"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
    Ok(())
}

/// One replica of a pair: its own address, and a client.
struct Replica {
    _served: Served,
    at: String,
}

impl Replica {
    fn start(database: &str, public: &str, bootstrap: bool) -> Result<(Self, serde_json::Value)> {
        let mut args = vec!["--database", database, "--public-url", public];
        if bootstrap {
            args.push("--bootstrap");
        }
        let (served, info) = serve(&args)?;
        let at = info["listening"]
            .as_str()
            .context("no listening address")?
            .to_string();
        Ok((
            Self {
                _served: served,
                at,
            },
            info,
        ))
    }

    /// `url` (named by the public URL, as links are) at this replica.
    fn here(&self, public: &str, url: &str) -> String {
        url.replacen(public, &self.at, 1)
    }
}

#[test]
fn two_replicas_on_one_database_serve_one_fleet() -> Result<()> {
    let Some(database) = fresh_database()? else {
        return Ok(());
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder().no_proxy().build()?;
    // Behind one address, as a load balancer would put them; each is
    // reached here directly.
    let public = "http://127.0.0.1:9";
    let (a, info) = Replica::start(&database, public, true)?;
    let (b, info_b) = Replica::start(&database, public, false)?;
    assert_eq!(
        info["adminKey"], info_b["adminKey"],
        "one state, one admin key"
    );
    let demo = &info["demo"];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let tenant = text(&demo["tenantId"]);
    let token_url = format!("{public}/{tenant}/oauth2/v2.0/token");
    let token = |at: &Replica| -> Result<String> {
        let body: serde_json::Value = http
            .post(at.here(public, &token_url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &text(&demo["administrator"]["clientId"])),
                ("client_secret", &text(&demo["administrator"]["secret"])),
                ("scope", &format!("{public}/.default")),
            ])
            .send()?
            .json()?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .context(format!("no token: {body}"))
    };
    let admin = token(&a)?;
    let machine = format!(
        "{public}/subscriptions/{}/resourceGroups/demo/providers/Microsoft.HybridCompute/machines/shared",
        text(&demo["subscriptionId"])
    );

    // Connected through A…
    let key = ed25519_dalek::SigningKey::from_bytes(&tether_key());
    let put = http
        .put(format!("{}?{API}", a.here(public, &machine)))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"location": "local", "properties": {
            "vmId": uuid(), "osType": "linux",
            "clientPublicKey": tether_cloud_api::jwt::public_key_text(&key.verifying_key())}}))
        .send()?;
    assert_eq!(put.status(), 200, "{}", put.text()?);
    let created: serde_json::Value = put.json()?;
    let principal = text(&created["identity"]["principalId"]);
    // …its identity signs in through B…
    let assertion =
        tether_cloud_api::jwt::client_assertion(&principal, &token_url, &key, None, now(), &uuid());
    let body: serde_json::Value = http
        .post(b.here(public, &token_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &principal),
            (
                "client_assertion_type",
                tether_cloud_api::identity::JWT_BEARER_ASSERTION,
            ),
            ("client_assertion", &assertion),
            ("scope", &format!("{public}/agent/.default")),
        ])
        .send()?
        .json()?;
    let machine_token = body["access_token"]
        .as_str()
        .context(format!("no machine token from B: {body}"))?
        .to_string();
    // …heartbeats through B, and A sees it.
    let beat = http
        .post(format!("{}/agent/v1/heartbeat", b.at))
        .bearer_auth(&machine_token)
        .json(&serde_json::json!({"agentVersion": "9.9.9"}))
        .send()?;
    assert_eq!(beat.status(), 200, "{}", beat.text()?);
    let seen: serde_json::Value = http
        .get(format!("{}?{API}", a.here(public, &machine)))
        .bearer_auth(&admin)
        .send()?
        .json()?;
    assert_eq!(seen["properties"]["agentVersion"], "9.9.9", "{seen}");
    assert_eq!(seen["properties"]["status"], "Connected", "{seen}");

    // An extension assigned through B is fetched and reported through A,
    // and its long-running operation ends, asked of B.
    let assign = http
        .put(format!(
            "{}/extensions/hello?{API}",
            b.here(public, &machine)
        ))
        .bearer_auth(token(&b)?)
        .json(&serde_json::json!({"location": "local", "properties": {
            "publisher": "Contoso", "type": "Hello", "typeHandlerVersion": "1.0.0"}}))
        .send()?;
    assert_eq!(assign.status(), 202, "{}", assign.text()?);
    let operation = assign
        .headers()
        .get("azure-asyncoperation")
        .and_then(|v| v.to_str().ok())
        .context("no Azure-AsyncOperation")?
        .to_string();
    assert!(
        operation.starts_with(public),
        "links name the public URL: {operation}"
    );
    let desired: serde_json::Value = http
        .get(format!("{}/agent/v1/extensions", a.at))
        .bearer_auth(&machine_token)
        .send()?
        .json()?;
    let wanted = &desired["extensions"][0];
    assert_eq!(wanted["name"], "hello", "{desired}");
    let report = http
        .post(format!("{}/agent/v1/extensions/hello/status", a.at))
        .bearer_auth(&machine_token)
        .json(
            &serde_json::json!({"sequence": wanted["sequence"], "state": "success",
                                  "version": "1.0.0", "message": "enabled"}),
        )
        .send()?;
    assert_eq!(report.status(), 204);
    let status: serde_json::Value = http
        .get(b.here(public, &operation))
        .bearer_auth(&admin)
        .send()?
        .json()?;
    assert_eq!(status["status"], "Succeeded", "{status}");

    // The same machine changed through both at once: each change is kept
    // or refused whole (409), never lost unseen, and both then serve the
    // same machine, with a change that was kept.
    let mut kept = Vec::new();
    for round in 0..20 {
        let answers: Vec<(String, u16)> = std::thread::scope(|scope| {
            let patches: Vec<_> = [(&a, "a"), (&b, "b")]
                .into_iter()
                .map(|(replica, name)| {
                    let (http, admin, machine) = (&http, &admin, &machine);
                    scope.spawn(move || {
                        let value = format!("{name}{round}");
                        let status = http
                            .patch(format!("{}?{API}", replica.here(public, machine)))
                            .bearer_auth(admin)
                            .json(&serde_json::json!({"tags": {"last": value}}))
                            .send()
                            .map(|r| r.status().as_u16())
                            .unwrap_or(0);
                        (value, status)
                    })
                })
                .collect();
            patches.into_iter().filter_map(|p| p.join().ok()).collect()
        });
        for (value, status) in answers {
            assert!(status == 200 || status == 409, "{value}: {status}");
            if status == 200 {
                kept.push(value);
            }
        }
    }
    let tags = |at: &Replica| -> Result<String> {
        let got: serde_json::Value = http
            .get(format!("{}?{API}", at.here(public, &machine)))
            .bearer_auth(&admin)
            .send()?
            .json()?;
        Ok(text(&got["tags"]["last"]))
    };
    eprintln!("kept {} of 40 concurrent changes", kept.len());
    let (on_a, on_b) = (tags(&a)?, tags(&b)?);
    assert_eq!(on_a, on_b, "the replicas disagree");
    assert!(
        kept.contains(&on_a),
        "{on_a} was never acknowledged: {kept:?}"
    );
    assert!(kept.iter().any(|v| v.starts_with('a')) && kept.iter().any(|v| v.starts_with('b')));
    Ok(())
}

#[test]
fn a_configuration_shown_for_debugging_hides_the_database_password() {
    let config = tether_cloud::CloudConfig {
        database_url: Some("postgres://tether:s3cret@127.0.0.1:5432/cloud".into()),
        ..Default::default()
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("127.0.0.1:5432/cloud"), "{shown}");
}
