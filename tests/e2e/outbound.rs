//! Outbound HTTP reaches exactly what was granted.

use crate::support::*;
use tether::runtime::{Call, ExtensionSpec, GuestErrorKind, HostPattern};
use tether_test_artifacts as artifacts;

#[test]
fn a_granted_loopback_origin_is_served_and_others_are_not() -> TestResult {
    let granted = LoopbackHttp::start("pong")?;
    let other = LoopbackHttp::start("nope")?;
    let data = tempfile::tempdir()?;
    let bytes = std::fs::read(artifacts::FIXTURE_UNDECLARED_HTTP)?;
    let mut spec = ExtensionSpec::new("fetcher", data.path());
    spec.outbound.hosts = vec![
        format!("http://{}", granted.addr)
            .parse::<HostPattern>()
            .map_err(anyhow::Error::msg)?,
    ];
    spec.outbound.allow_local = true;
    let ext = runtime().load(&bytes, spec)?;

    let get = |url: String| Call::Invoke {
        command: "get".into(),
        args: vec![url],
    };
    let out = ext.call(get(granted.url()))?;
    assert_eq!(out.output.as_deref(), Some("200 pong"));
    assert_eq!(granted.seen(), 1);

    let err = ext.call(get(other.url())).expect_err("not granted");
    assert!(
        matches!(&err.kind, GuestErrorKind::Returned { code, .. } if code == "denied"),
        "{err}"
    );
    assert_eq!(other.seen(), 0);
    Ok(())
}

#[test]
fn run_local_grants_outbound_http_only_when_asked() -> TestResult {
    let server = LoopbackHttp::start("hi")?;
    let home = tempfile::tempdir()?;
    let out = tether(home.path())
        .args([
            "extension",
            "run-local",
            artifacts::FIXTURE_UNDECLARED_HTTP,
            "invoke",
            "get",
            &server.url(),
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(20));
    assert!(stderr(&out).contains("denied"), "{}", stderr(&out));
    assert_eq!(server.seen(), 0);

    let out = tether(home.path())
        .args([
            "extension",
            "run-local",
            artifacts::FIXTURE_UNDECLARED_HTTP,
            "invoke",
            "get",
            &server.url(),
        ])
        .args(["--allow-http", &format!("http://{}", server.addr)])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "200 hi\n");
    assert_eq!(server.seen(), 1);
    Ok(())
}
