//! Proxy routing by service, through a real tinyproxy, asserted from the
//! proxy's log and from tether-cloud's request log.

use crate::support::*;
use tether_cloud::{BackgroundCloud, CloudConfig};

fn cloud() -> anyhow::Result<BackgroundCloud> {
    BackgroundCloud::start(CloudConfig::default())
}

#[test]
fn proxied_services_go_through_the_proxy_and_bypassed_ones_go_direct() -> TestResult {
    let proxy = Tinyproxy::start()?;
    let cloud = cloud()?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    assert!(
        tether(h)
            .args(["config", "set", "proxy.url", &proxy.url])
            .status()?
            .success()
    );
    assert!(
        tether(h)
            .args(["config", "set", "proxy.bypass", "ARM"])
            .status()?
            .success()
    );

    let out = tether(h)
        .args(["--json", "check", "--cloud", &cloud.metadata_url()])
        .output()?;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    for e in report["endpoints"].as_array().into_iter().flatten() {
        assert_eq!(e["reachable"], true, "{e}");
        let via_proxy = e["service"] != "ARM";
        assert_eq!(
            e["proxy"].as_str() == Some(proxy.url.as_str()),
            via_proxy,
            "{e}"
        );
        // azcmagent check's columns.
        assert!(
            e["endpoint"]
                .as_str()
                .is_some_and(|u| cloud.url.starts_with(u)),
            "{e}"
        );
        assert_eq!(e["private"], false);
        assert_eq!(e["tls"], "none", "plain HTTP on loopback: {e}");
        let expected = if via_proxy {
            proxy.url.as_str()
        } else {
            "bypassed"
        };
        assert_eq!(e["proxyStatus"], expected, "{e}");
    }

    // The proxy saw identity, agent service and gallery, never ARM.
    let seen = proxy.requests();
    assert!(
        seen.iter()
            .any(|r| r.contains("/common/discovery/v2.0/keys")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|r| r.contains("/agent")), "{seen:?}");
    assert!(seen.iter().any(|r| r.contains("/gallery")), "{seen:?}");
    assert!(
        !seen.iter().any(|r| r.contains("/metadata/endpoints")),
        "ARM went through the proxy: {seen:?}"
    );

    // And tether-cloud saw the proxy's Via header on exactly those.
    let log = cloud.admin()?.requests(0)?;
    for r in &log {
        let proxied = r.via.as_deref().is_some_and(|v| v.contains("tinyproxy"));
        let arm = r.path.starts_with("/metadata/");
        assert_eq!(proxied, !arm, "{r:?}");
    }
    assert!(log.iter().any(|r| r.path.starts_with("/metadata/")));
    Ok(())
}

#[test]
fn the_environment_proxy_applies_only_without_the_setting() -> TestResult {
    let proxy = Tinyproxy::start()?;
    let cloud = cloud()?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let list = tether(h)
        .args(["--json", "config", "list"])
        .env("HTTPS_PROXY", &proxy.url)
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&list.stdout)?;
    assert_eq!(v["effectiveProxy"]["source"]["environment"], "HTTPS_PROXY");
    assert_eq!(v["effectiveProxy"]["url"], proxy.url.as_str());

    let out = tether(h)
        .args(["check", "--cloud", &cloud.metadata_url()])
        .env("HTTPS_PROXY", &proxy.url)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("via {}", proxy.url)),
        "{}",
        stdout(&out)
    );
    let through = proxy.requests().len();
    assert!(through >= 4, "{:?}", proxy.requests());

    // NO_PROXY sends matching hosts direct.
    let out = tether(h)
        .args(["check", "--cloud", &cloud.metadata_url()])
        .env("HTTPS_PROXY", &proxy.url)
        .env("NO_PROXY", "127.0.0.1")
        .output()?;
    assert!(out.status.success());
    assert_eq!(proxy.requests().len(), through, "NO_PROXY was ignored");

    // The agent's setting beats the environment: a dead proxy in the
    // setting fails the check although the environment names a good one.
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    );
    assert!(
        tether(h)
            .args(["config", "set", "proxy.url", &dead])
            .status()?
            .success()
    );
    let out = tether(h)
        .args(["check", "--cloud", &cloud.metadata_url()])
        .env("HTTPS_PROXY", &proxy.url)
        .output()?;
    assert_eq!(out.status.code(), Some(26), "{}", stdout(&out));
    assert_eq!(proxy.requests().len(), through);
    Ok(())
}

#[test]
fn check_reports_a_faulted_endpoint_as_unreachable() -> TestResult {
    let cloud = cloud()?;
    let home = tempfile::tempdir()?;
    cloud.admin()?.add_fault(&tether_cloud::Fault {
        path: "/agent".into(),
        reset: true,
        ..Default::default()
    })?;
    let out = tether(home.path())
        .args(["--json", "check", "--cloud", &cloud.metadata_url()])
        .output()?;
    assert_eq!(out.status.code(), Some(26));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let by_name = |n: &str| {
        report["endpoints"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["name"] == n).cloned())
            .unwrap_or_default()
    };
    assert_eq!(by_name("agentService")["reachable"], false);
    assert!(by_name("agentService")["error"].is_string());
    assert_eq!(by_name("identity")["reachable"], true);
    assert_eq!(by_name("resourceManager")["reachable"], true);
    Ok(())
}

#[test]
fn a_ca_certificate_that_cannot_be_read_or_is_no_certificate_is_refused_clearly() -> TestResult {
    let home = tempfile::tempdir()?;
    let not_pem = home.path().join("ca.txt");
    std::fs::write(&not_pem, "hello")?;
    for (file, says) in [
        (
            home.path().join("missing.pem"),
            "could not read the CA certificate",
        ),
        (not_pem, "is not a PEM certificate"),
    ] {
        for command in [
            &["check"][..],
            &["login", "--use-device-code", "--tenant-id", "t"][..],
        ] {
            let out = tether(home.path())
                .args(command)
                .arg("--cloud-ca-cert")
                .arg(&file)
                .output()?;
            assert_eq!(out.status.code(), Some(3), "{command:?}: {}", stderr(&out));
            assert!(stderr(&out).contains(says), "{}", stderr(&out));
        }
    }
    Ok(())
}
