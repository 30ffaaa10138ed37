//! tether-cloud on PostgreSQL (`--database`): the state kept there across
//! a `kill -9`, and one server per database.

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
fn a_database_serves_one_tether_cloud_and_its_password_stays_out_of_errors() -> Result<()> {
    let Some(database) = fresh_database()? else {
        return Ok(());
    };
    let (_first, info) = serve(&["--database", &database])?;
    let state = info["state"].as_str().unwrap_or_default();
    assert!(
        state.starts_with("PostgreSQL postgres://tether:***@127.0.0.1:"),
        "{state}"
    );
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_tether-cloud"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TETHER_CLOUD_DATABASE", &database)
        .output()?;
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another tether-cloud"), "{err}");
    let password = url::Url::parse(&database)?
        .password()
        .unwrap_or_default()
        .to_string();
    assert!(
        !password.is_empty() && !err.contains(&format!(":{password}@")),
        "{err}"
    );
    // A wrong password is refused with what to check, and not echoed.
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
