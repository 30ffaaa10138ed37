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

/// Components built with other languages' ordinary HTTP libraries speak
/// standard `wasi:http`; it reaches exactly what Tether's own
/// `outbound-http` would, through the same checks.
#[test]
fn standard_wasi_http_goes_through_the_same_grant_and_guard() -> TestResult {
    let server = LoopbackHttp::start("hi")?;
    let home = tempfile::tempdir()?;
    let run = |url: &str, allow: Option<&str>| -> anyhow::Result<std::process::Output> {
        let mut cmd = tether(home.path());
        cmd.args([
            "extension",
            "run-local",
            artifacts::FIXTURE_WASI_HTTP,
            "invoke",
            "get",
            url,
        ]);
        if let Some(origin) = allow {
            cmd.args(["--allow-http", origin]);
        }
        Ok(cmd.output()?)
    };
    let origin = format!("http://{}", server.addr);
    // Not granted: refused before a connection is made.
    let out = run(&server.url(), None)?;
    assert_eq!(out.status.code(), Some(20), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HttpRequestDenied"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.seen(), 0);
    // Granted: served, with the library's own request.
    let out = run(&server.url(), Some(&origin))?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "200 hi\n");
    assert_eq!(server.seen(), 1);
    // A name that resolves to loopback is never reached, even granted.
    let by_name = format!("http://localhost:{}", server.addr.port());
    let out = run(&format!("{by_name}/"), Some(&by_name))?;
    assert_eq!(out.status.code(), Some(20), "{}", stderr(&out));
    assert_eq!(server.seen(), 1, "the guard kept it from loopback");
    Ok(())
}
