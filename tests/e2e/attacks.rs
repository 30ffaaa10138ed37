//! The trust boundaries of host/README.md's threat model, each attacked the
//! way someone on the machine or in the supply chain would, through the
//! real `tether`, a real `tether-cloud` and real guest components: every
//! attack fails with a clear error, and nothing is lost.

use crate::extensions::{Publisher, ext, manifest, package, raw_tar, trust, write};
use crate::service::{Service, connected, get};
use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Sends one raw request line to the control socket and returns the reply
/// lines, as `uid` with the supplementary group `gid` (None: as we are).
/// Perl's socket module is in Debian's perl-base, so the attacker needs
/// nothing the test built.
fn raw_control(
    home: &Path,
    as_user: Option<(u32, u32)>,
    request: &Value,
) -> anyhow::Result<Vec<Value>> {
    const SCRIPT: &str = r#"use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or die "connect: $!\n"; print $s $ARGV[1], "\n"; while (<$s>) { print }"#;
    let socket = home.join("run/control.sock");
    let mut cmd = match as_user {
        Some((uid, gid)) => {
            let mut cmd = Command::new("setpriv");
            cmd.args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                format!("--groups={gid}"),
                "perl".into(),
            ]);
            cmd
        }
        None => Command::new("perl"),
    };
    let out = cmd
        .args(["-e", SCRIPT])
        .arg(&socket)
        .arg(request.to_string())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "the raw client failed: {}",
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

fn failed(replies: &[Value]) -> Option<(u64, String)> {
    replies.last().and_then(|r| {
        let f = &r["failed"];
        Some((f["exitCode"].as_u64()?, f["message"].as_str()?.to_string()))
    })
}

fn hello_package(signer: &Publisher, version: &str) -> anyhow::Result<Vec<u8>> {
    package(
        signer,
        "Contoso",
        "Hello",
        version,
        "other",
        tether_test_artifacts::HELLO,
        "",
    )
}

fn installed_ids(home: &Path) -> anyhow::Result<Vec<String>> {
    let out = tether(home)
        .args(["--json", "extension", "list"])
        .output()?;
    let list: Value = serde_json::from_slice(&out.stdout)?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect())
}

#[test]
fn the_tether_group_may_read_the_service_status_but_never_change_the_machine() -> TestResult {
    if !is_root() {
        eprintln!("skipped: switching to another uid needs root");
        return Ok(());
    }
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "atk-socket")?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 31);
    trust(h, &contoso)?;
    let pkg = write(h, "hello.tpkg", &hello_package(&contoso, "1.0.0")?)?;
    assert!(ext(h, &["install", &pkg])?.status.success());
    let service = Service::start(h, "5m")?;
    // A member of the socket's group, as the `tether` group would be.
    let gid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(h.join("run/control.sock"))?.gid()
    };
    std::fs::set_permissions(h, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let member = Some((65534, gid));

    let status = raw_control(h, member, &json!({"op": "status"}))?;
    assert!(
        status
            .last()
            .is_some_and(|r| r["done"]["connected"] == true),
        "the group may read the status: {status:?}"
    );
    for request in [
        json!({"op": "disconnect", "armToken": null, "forceLocalOnly": true}),
        json!({"op": "reset", "armToken": null}),
        json!({"op": "reload"}),
        json!({"op": "heartbeat"}),
        json!({"op": "extension", "action": "invoke", "id": "Contoso/Hello", "command": "greet", "args": ["x"]}),
        json!({"op": "extension", "action": "remove", "ids": ["Contoso/Hello"]}),
    ] {
        let replies = raw_control(h, member, &request)?;
        let (code, message) = failed(&replies)
            .ok_or_else(|| anyhow::anyhow!("{request} was not refused: {replies:?}"))?;
        assert_eq!(code, 18, "{request}: {message}");
        assert!(message.contains("only root"), "{message}");
    }
    // Nothing was lost.
    assert!(h.join("registration.json").exists());
    assert!(h.join("identity/machine.key").exists());
    assert_eq!(installed_ids(h)?, ["Contoso/Hello"]);
    assert_eq!(cloud.machines()?.len(), 1);
    let log = std::fs::read_to_string(h.join("logs/tether.log"))?;
    assert!(
        log.contains("refused a `disconnect` request from uid 65534"),
        "{log}"
    );
    assert!(!log.contains("invoke Contoso/Hello"), "nothing was invoked");

    // Root itself cannot smuggle a path in an id.
    for id in [
        "Contoso/../../somewhere",
        "Contoso/..",
        "../x",
        "Contoso/.hidden",
    ] {
        let replies = raw_control(
            h,
            None,
            &json!({"op": "extension", "action": "invoke", "id": id, "command": "greet", "args": []}),
        )?;
        let (code, message) =
            failed(&replies).ok_or_else(|| anyhow::anyhow!("{id} was run: {replies:?}"))?;
        assert_eq!(code, 23, "{id}: {message}");
        assert!(message.contains("is not an extension id"), "{message}");
    }
    // The real one still runs, through the service, as root.
    let out = ext(h, &["invoke", "Contoso/Hello", "greet", "root"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    drop(service);
    Ok(())
}

#[test]
fn ids_made_of_dots_never_become_paths_and_removal_touches_only_its_own_directory() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 32);
    trust(h, &contoso)?;
    let good = write(h, "hello.tpkg", &hello_package(&contoso, "1.0.0")?)?;
    assert!(ext(h, &["install", &good])?.status.success());

    // A trusted publisher signs a manifest whose name is `..` (or `.`, or
    // hidden): the package is refused before anything is written.
    let component = std::fs::read(tether_test_artifacts::HELLO)?;
    for name in ["..", ".", ".hidden"] {
        let m = manifest("Contoso", name, "1.0.0", "other", &component, "");
        let sig = contoso.sign(&m);
        let tar = raw_tar(&[
            ("extension.toml", &m),
            ("component.wasm", &component),
            ("extension.sig", sig.to_toml().as_bytes()),
        ]);
        let file = write(h, "dots.tpkg", &tar)?;
        let out = ext(h, &["install", &file])?;
        assert_eq!(out.status.code(), Some(7), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("may not start with '.'"),
            "{}",
            stderr(&out)
        );
    }
    // Ids from the command line are parsed the same way.
    for id in ["Contoso/..", "Contoso/../..", "..", "Contoso/./Hello"] {
        for command in [["remove", id], ["enable", id], ["show", id]] {
            let out = ext(h, &command)?;
            assert_eq!(out.status.code(), Some(23), "{command:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains("is not an extension id"),
                "{}",
                stderr(&out)
            );
        }
    }
    // A journal naming a path outside its extension is left alone at
    // recovery: nothing is deleted.
    std::fs::create_dir_all(h.join("journal"))?;
    std::fs::write(
        h.join("journal/extension-contoso--evil.json"),
        serde_json::to_vec(
            &json!({"operation": "extension-contoso--evil", "done": [], "started": 0,
                                   "data": {"id": "Contoso/../..", "from": null}}),
        )?,
    )?;
    let out = ext(h, &["enable", "Contoso/Hello"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("left alone, nothing deleted"),
        "{}",
        stderr(&out)
    );
    assert!(h.join("journal/extension-contoso--evil.json").exists());
    assert!(h.join("extensions/contoso/hello/package.tpkg").exists());
    assert_eq!(installed_ids(h)?, ["Contoso/Hello"]);
    Ok(())
}

/// A token request as a workload makes it, challenge and all; the final
/// response.
fn workload_token(base: &str, resource: &str) -> anyhow::Result<reqwest::blocking::Response> {
    let url = format!(
        "{base}/metadata/identity/oauth2/token?api-version=2020-06-01&resource={}",
        url_encode(resource)
    );
    let first = get(&url, &[("Metadata", "true")])?;
    let Some(realm) = first
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic realm="))
        .map(str::to_string)
    else {
        return Ok(first);
    };
    let secret = std::fs::read_to_string(realm)?;
    get(
        &url,
        &[
            ("Metadata", "true"),
            ("Authorization", &format!("Basic {secret}")),
        ],
    )
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn key_files(home: &Path) -> usize {
    std::fs::read_dir(home.join("challenges"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn workloads_never_get_the_agent_channel_and_cannot_flood_or_rebind_the_metadata_endpoint()
-> TestResult {
    let cloud = Cloud::start()?;
    let home = connected(&cloud, "atk-meta")?;
    let h = home.path();
    let service = Service::start(h, "5m")?;
    let base = service.metadata()?;
    let agent = format!("{}/agent/", cloud.cloud.url);

    // The ARM audience is a workload's to have…
    let arm = workload_token(&base, &format!("{}/", cloud.cloud.url))?;
    assert_eq!(arm.status(), 200);
    // …the agent service's is the machine's own, however it is spelled.
    for resource in [
        agent.clone(),
        agent.trim_end_matches('/').to_string(),
        format!("{agent}.default"),
        agent.to_ascii_uppercase().replace("HTTP://", "http://"),
        format!("{agent}v1/extensions"),
    ] {
        let before = key_files(h);
        let response = workload_token(&base, &resource)?;
        assert_eq!(response.status(), 400, "{resource}");
        let body: Value = response.json()?;
        assert_eq!(body["error"], "invalid_resource", "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains("agent service"),
            "{body}"
        );
        assert_eq!(key_files(h), before, "no key file for a refused audience");
    }

    // A browser page on an attacker's name that resolves to 127.0.0.1
    // (DNS rebinding) sends that name as Host.
    let port = base.rsplit(':').next().unwrap_or_default();
    let http = reqwest::blocking::Client::builder().no_proxy().build()?;
    let rebound = http
        .get(format!("{base}/metadata/instance?api-version=2021-02-01"))
        .header("Metadata", "true")
        .header("Host", format!("attacker.example:{port}"))
        .send()?;
    assert_eq!(rebound.status(), 403);
    assert!(rebound.text()?.contains("Host header"));
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let ok = http
            .get(format!("{base}/metadata/instance?api-version=2021-02-01"))
            .header("Metadata", "true")
            .header("Host", host.as_str())
            .send()?;
        assert_eq!(ok.status(), 200, "{host}");
    }

    // Rotating the source address among 127.0.0.0/8 shares one budget.
    let clients = (2..10u8)
        .map(|last| {
            reqwest::blocking::Client::builder()
                .no_proxy()
                .local_address(std::net::IpAddr::from([127, 0, 0, last]))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let v4 = base.replace("[::1]", "127.0.0.1");
    let mut limited = 0;
    for i in 0..120 {
        let response = clients[i % clients.len()]
            .get(format!("{v4}/metadata/instance?api-version=2021-02-01"))
            .header("Metadata", "true")
            .send()?;
        if response.status() == 429 {
            limited += 1;
        }
    }
    assert!(
        limited > 0,
        "eight source addresses each got a budget of their own"
    );

    // Unauthenticated token requests, paced under the rate limit, write at
    // most the capped number of key files.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let url = format!(
        "{v4}/metadata/identity/oauth2/token?api-version=2020-06-01&resource={}",
        url_encode(&format!("{}/", cloud.cloud.url))
    );
    let mut capped = 0;
    for _ in 0..100 {
        let response = get(&url, &[("Metadata", "true")])?;
        if response.status() == 429 && response.text()?.contains("challenges are open") {
            capped += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(60));
    }
    assert!(capped > 0, "the challenge cap never answered");
    assert!(key_files(h) <= 64, "{} key files", key_files(h));
    Ok(())
}

#[test]
fn the_cloud_can_neither_substitute_a_package_nor_cause_a_downgrade_and_reports_are_retried()
-> TestResult {
    let cloud = Cloud::start()?;
    let admin = cloud.cloud.admin()?;
    let home = connected(&cloud, "atk-cloud")?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 33);
    let fabrikam = Publisher::new("Fabrikam", 34);
    trust(h, &contoso)?;
    trust(h, &fabrikam)?;
    let machine_id = serde_json::from_slice::<Value>(&std::fs::read(h.join("registration.json"))?)?
        ["resourceId"]
        .clone();
    let assign = |name: &str, ty: &str, version: &str| {
        admin.post(
            "/extensions",
            json!({"machineId": machine_id, "name": name, "publisher": "Contoso", "type": ty,
                   "version": version, "settings": {}, "protectedSettings": {"token": "contoso-only-5521"}}),
        )
    };
    let state_of = |name: &str| -> anyhow::Result<String> {
        Ok(crate::extensions::cloud_extension(&cloud, name)?
            .map(|e| {
                e["properties"]["provisioningState"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default())
    };

    // The gallery's route for Contoso/Secret serves Fabrikam's Leaker,
    // validly signed by a publisher this machine trusts.
    let leaker = package(
        &fabrikam,
        "Fabrikam",
        "Leaker",
        "1.0.0",
        "other",
        tether_test_artifacts::INVENTORY,
        "",
    )?;
    admin.upload_package("Contoso", "Secret", "1.0.0", leaker)?;
    assign("secret", "Secret", "1.0.0")?;
    let outcomes = crate::extensions::reconcile(h)?;
    let secret = outcomes
        .iter()
        .find(|o| o["name"] == "secret")
        .ok_or_else(|| anyhow::anyhow!("{outcomes:?}"))?;
    assert_eq!(secret["action"], "refused", "{secret}");
    assert!(
        secret["message"]
            .as_str()
            .unwrap_or_default()
            .contains("assignment check"),
        "{secret}"
    );
    assert!(installed_ids(h)?.is_empty(), "nothing was installed");
    assert!(!h.join("extensions/fabrikam").exists());
    assert_eq!(state_of("secret")?, "Failed");

    // 2.0.0 through the cloud, removed, then 1.0.0: refused as a downgrade.
    admin.upload_package(
        "Contoso",
        "Hello",
        "2.0.0",
        hello_package(&contoso, "2.0.0")?,
    )?;
    admin.upload_package(
        "Contoso",
        "Hello",
        "1.0.0",
        hello_package(&contoso, "1.0.0")?,
    )?;
    assign("hello", "Hello", "2.0.0")?;
    crate::extensions::reconcile(h)?;
    assert_eq!(installed_ids(h)?, ["Contoso/Hello"]);
    let http = reqwest::blocking::Client::builder().no_proxy().build()?;
    let deleted = http
        .delete(format!(
            "{}{}/extensions/hello?api-version=2024-07-10",
            cloud.cloud.url,
            machine_id.as_str().unwrap_or_default()
        ))
        .bearer_auth(cloud.admin_arm_token()?)
        .send()?;
    assert_eq!(deleted.status(), 202);
    crate::extensions::reconcile(h)?;
    assert!(installed_ids(h)?.is_empty());
    assign("hello", "Hello", "1.0.0")?;
    let outcomes = crate::extensions::reconcile(h)?;
    let hello = outcomes
        .iter()
        .find(|o| o["name"] == "hello")
        .ok_or_else(|| anyhow::anyhow!("{outcomes:?}"))?;
    assert_eq!(hello["action"], "refused", "{hello}");
    assert!(
        hello["message"]
            .as_str()
            .unwrap_or_default()
            .contains("downgrade"),
        "{hello}"
    );
    assert!(installed_ids(h)?.is_empty());

    // A status report the cloud fails is sent again by the next pass (the
    // refused assignment goes first, so that its reports send nothing else).
    let deleted = http
        .delete(format!(
            "{}{}/extensions/secret?api-version=2024-07-10",
            cloud.cloud.url,
            machine_id.as_str().unwrap_or_default()
        ))
        .bearer_auth(cloud.admin_arm_token()?)
        .send()?;
    assert_eq!(deleted.status(), 202);
    admin.upload_package(
        "Contoso",
        "Hello",
        "3.0.0",
        hello_package(&contoso, "3.0.0")?,
    )?;
    admin.add_fault(&tether_cloud::Fault {
        method: Some("POST".into()),
        path: "/agent/v1/extensions/hello/status".into(),
        status: Some(500),
        count: Some(1),
        ..Default::default()
    })?;
    assign("hello", "Hello", "3.0.0")?;
    let outcomes = crate::extensions::reconcile(h)?;
    let hello = outcomes
        .iter()
        .find(|o| o["name"] == "hello")
        .ok_or_else(|| anyhow::anyhow!("{outcomes:?}"))?;
    assert_eq!(hello["action"], "installed", "{hello}");
    assert!(
        hello["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not reported yet"),
        "{hello}"
    );
    let reported = || -> anyhow::Result<String> {
        Ok(crate::extensions::cloud_extension(&cloud, "hello")?
            .map(|e| {
                e["properties"]["instanceView"]["typeHandlerVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default())
    };
    assert_ne!(reported()?, "3.0.0", "the report did not arrive");
    let again = crate::extensions::reconcile(h)?;
    assert!(
        again
            .iter()
            .any(|o| o["name"] == "hello" && o["action"] == "unchanged"),
        "{again:?}"
    );
    assert_eq!(reported()?, "3.0.0", "the retried report arrived");
    assert_eq!(state_of("hello")?, "Succeeded");
    Ok(())
}

#[test]
fn a_disconnect_the_cloud_refuses_changes_nothing_local() -> TestResult {
    let cloud = Cloud::start()?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let out = tether(h)
        .args(["connect", "--config"])
        .arg(cloud.config_file("onboarding")?)
        .args(["--resource-name", "atk-403"])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let contoso = Publisher::new("Contoso", 35);
    trust(h, &contoso)?;
    let pkg = write(h, "hello.tpkg", &hello_package(&contoso, "1.0.0")?)?;
    assert!(ext(h, &["install", &pkg])?.status.success());
    let out = tether(h)
        .args(["disconnect", "--config"])
        .arg(cloud.config_file("onboarding")?)
        .output()?;
    assert_eq!(out.status.code(), Some(43), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing local was changed")
            || stderr(&out).contains("nothing was changed")
    );
    assert_eq!(installed_ids(h)?, ["Contoso/Hello"]);
    let invoked = ext(h, &["invoke", "Contoso/Hello", "greet", "still"])?;
    assert!(invoked.status.success(), "{}", stderr(&invoked));
    assert!(h.join("registration.json").exists());
    assert!(!h.join("journal/disconnect.json").exists());
    assert_eq!(cloud.machines()?.len(), 1);
    Ok(())
}

#[test]
fn a_declared_name_that_resolves_to_loopback_never_reaches_it() -> TestResult {
    let server = LoopbackHttp::start("internal")?;
    let port = server.addr.port();
    let home = tempfile::tempdir()?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 36);
    trust(h, &contoso)?;
    let origins = [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
    ];
    let extra = format!(
        "[capabilities]\noutbound = [{}]",
        origins
            .iter()
            .map(|o| format!("\"{o}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let pkg = package(
        &contoso,
        "Contoso",
        "Fetcher",
        "1.0.0",
        "other",
        tether_test_artifacts::FIXTURE_UNDECLARED_HTTP,
        &extra,
    )?;
    let file = write(h, "fetcher.tpkg", &pkg)?;
    // Declared is not granted: the operator allows origins too.
    let out = ext(h, &["install", &file])?;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("extensions.outbound.allowed"),
        "{}",
        stderr(&out)
    );
    let allow = tether(h)
        .args([
            "config",
            "set",
            "extensions.outbound.allowed",
            &origins.join(","),
        ])
        .output()?;
    assert!(allow.status.success(), "{}", stderr(&allow));
    let out = ext(h, &["install", &file])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let fetch = |url: &str| ext(h, &["invoke", "Contoso/Fetcher", "get", url]);

    // Declared by name: the name resolves to loopback, so it is refused
    // whatever the operator allows.
    for allow in ["false", "true"] {
        let set = tether(h)
            .args(["config", "set", "extensions.outbound.allowlocal", allow])
            .output()?;
        assert!(set.status.success(), "{}", stderr(&set));
        let out = fetch(&format!("http://localhost:{port}/"))?;
        assert_eq!(out.status.code(), Some(20), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("never reached through a name"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(server.seen(), 0);

    // Declared literally: refused until the operator allows it.
    let set = tether(h)
        .args(["config", "set", "extensions.outbound.allowlocal", "false"])
        .output()?;
    assert!(set.status.success());
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        let out = fetch(&url)?;
        assert_eq!(out.status.code(), Some(20), "{url}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("extensions.outbound.allowlocal"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(server.seen(), 0);
    let set = tether(h)
        .args(["config", "set", "extensions.outbound.allowlocal", "true"])
        .output()?;
    assert!(set.status.success());
    let out = fetch(&format!("http://127.0.0.1:{port}/"))?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("200 internal"), "{}", stdout(&out));
    assert_eq!(server.seen(), 1);
    Ok(())
}

#[test]
fn a_sleeping_guest_neither_outlives_its_deadline_nor_stalls_the_service() -> TestResult {
    let cloud = Cloud::start()?;
    let admin = cloud.cloud.admin()?;
    let home = connected(&cloud, "atk-sleeper")?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 37);
    trust(h, &contoso)?;
    let machine_id = serde_json::from_slice::<Value>(&std::fs::read(h.join("registration.json"))?)?
        ["resourceId"]
        .clone();
    let sleeper = package(
        &contoso,
        "Contoso",
        "Sleeper",
        "1.0.0",
        "other",
        tether_test_artifacts::FIXTURE_SLEEPER,
        "[limits]\ncall_timeout_ms = 3000",
    )?;
    admin.upload_package("Contoso", "Sleeper", "1.0.0", sleeper.clone())?;
    let service = Service::start(h, "1s")?;
    service.wait_until("a heartbeat", |l| l["lastHeartbeat"].is_number())?;

    // The cloud assigns it with an `enable` that sleeps 8 s: the reconcile
    // pass runs its 3 s deadline out while heartbeats keep their cadence.
    admin.post(
        "/extensions",
        json!({"machineId": machine_id, "name": "sleeper", "publisher": "Contoso", "type": "Sleeper",
               "version": "1.0.0", "settings": {"enableSleepSeconds": 8}}),
    )?;
    let started = std::time::Instant::now();
    let mut beats = std::collections::BTreeSet::new();
    let outcome = loop {
        let status = service.status()?;
        let live = &status["live"];
        if let Some(beat) = live["lastHeartbeat"].as_u64() {
            beats.insert(beat);
        }
        let done = live["reconcileOutcomes"]
            .as_array()
            .and_then(|o| o.iter().find(|x| x["name"] == "sleeper").cloned());
        if let Some(done) = done {
            break done;
        }
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the reconcile never finished: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let took = started.elapsed();
    assert_eq!(outcome["action"], "failed", "{outcome}");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap_or_default()
            .contains("time limit")
            || outcome["message"]
                .as_str()
                .unwrap_or_default()
                .contains("3000 ms"),
        "{outcome}"
    );
    assert!(
        took < std::time::Duration::from_secs(8),
        "enable ran past its deadline: {took:?}"
    );
    assert!(
        beats.len() >= 3,
        "heartbeats stopped while the guest slept: {beats:?} in {took:?}"
    );

    // Installed by hand without the sleep, an invoke that sleeps 30 s ends
    // at the deadline, reported as the host stopping it.
    let file = write(h, "sleeper.tpkg", &sleeper)?;
    let out = ext(h, &["install", &file])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let started = std::time::Instant::now();
    let out = ext(h, &["invoke", "Contoso/Sleeper", "sleep", "30"])?;
    assert_eq!(out.status.code(), Some(21), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // The status answers at once meanwhile and afterwards.
    let asked = std::time::Instant::now();
    service.status()?;
    assert!(asked.elapsed() < std::time::Duration::from_secs(2));
    Ok(())
}

#[test]
fn secrets_and_private_data_stay_out_of_bundles_listings_and_errors() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 38);
    trust(h, &contoso)?;
    let pkg = package(
        &contoso,
        "Contoso",
        "Inventory",
        "1.0.0",
        "monitoring",
        tether_test_artifacts::INVENTORY,
        "",
    )?;
    let file = write(h, "inv.tpkg", &pkg)?;
    assert!(ext(h, &["install", &file])?.status.success());
    assert!(
        ext(h, &["invoke", "Contoso/Inventory", "collect"])?
            .status
            .success()
    );
    let data = h.join("extensions/contoso/inventory/data");
    assert!(
        std::fs::read_dir(&data)?.count() > 0,
        "the extension keeps private data"
    );

    // The bundle: created new, owner-only, without extensions' data.
    let work = tempfile::tempdir()?;
    let zip_path = work.path().join("bundle.zip");
    let out = tether(h)
        .arg("logs")
        .arg("--output")
        .arg(&zip_path)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&zip_path)?.permissions().mode() & 0o777,
            0o600
        );
    }
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path)?)?;
    let names: Vec<String> = (0..zip.len())
        .filter_map(|i| {
            zip.by_index(i)
                .ok()
                .and_then(|f| f.name().ok().map(|n| n.to_string()))
        })
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.ends_with("extensions/contoso/inventory/state.json")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("/data/")), "{names:?}");
    // An existing file is never replaced (it could be a planted link).
    let planted = work.path().join("planted.zip");
    std::fs::write(&planted, b"keep me")?;
    let out = tether(h)
        .arg("logs")
        .arg("--output")
        .arg(&planted)
        .output()?;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&planted)?, b"keep me");

    // Proxy credentials from the environment are masked wherever shown.
    let secret = "pr0xy-pa55word";
    let proxy = format!("http://operator:{secret}@127.0.0.1:3128");
    for args in [
        vec!["config", "list"],
        vec!["--json", "config", "list"],
        vec!["show"],
        vec!["--json", "show"],
    ] {
        let out = tether(h).args(&args).env("HTTPS_PROXY", &proxy).output()?;
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!text.contains(secret), "{args:?}: {text}");
        if args.contains(&"config") {
            assert!(text.contains("REDACTED@127.0.0.1:3128"), "{args:?}: {text}");
        }
    }

    // A file that is not a package is refused without quoting it.
    let fake = work.path().join("passwd");
    std::fs::write(
        &fake,
        "root:x:0:0:the-root-line:/root:/bin/bash\n".repeat(30),
    )?;
    let out = ext(h, &["install", &fake.display().to_string()])?;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(!stderr(&out).contains("the-root-line"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a Tether package"),
        "{}",
        stderr(&out)
    );
    // A package with bytes after its end is refused too.
    let mut smuggled = pkg.clone();
    smuggled.extend_from_slice(b"#!/bin/sh\necho extra\n");
    let file = write(h, "smuggled.tpkg", &smuggled)?;
    let out = ext(h, &["install", &file])?;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("bytes follow the end"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn a_state_root_another_user_owns_is_refused() -> TestResult {
    if !is_root() {
        eprintln!("skipped: giving a directory to another user needs root");
        return Ok(());
    }
    let home = tempfile::tempdir()?;
    let h = home.path().join("planted");
    std::fs::create_dir(&h)?;
    std::fs::write(h.join("settings.toml"), "[extensions]\nenabled = true\n")?;
    std::os::unix::fs::chown(&h, Some(65534), Some(65534))?;
    for args in [
        vec!["config", "set", "extensions.agent.cpulimit", "10"],
        vec!["service", "run", "--metadata-port", "0"],
    ] {
        let out = tether(&h).args(&args).output()?;
        assert_eq!(out.status.code(), Some(7), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("owned by another user"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(h.join("settings.toml"))?,
        "[extensions]\nenabled = true\n",
        "nothing was written"
    );
    Ok(())
}

#[test]
fn what_an_extension_logs_reaches_the_journal_and_the_log_file_redacted() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let contoso = Publisher::new("Contoso", 39);
    trust(h, &contoso)?;
    let pkg = write(h, "hello.tpkg", &hello_package(&contoso, "1.0.0")?)?;
    assert!(ext(h, &["install", &pkg])?.status.success());
    // The service's stderr is what systemd's journal keeps.
    let journal = h.join("journal.txt");
    let mut child = tether(h)
        .args(["service", "run", "--metadata-port", "0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&journal)?)
        .spawn()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !h.join("run/control.sock").exists() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the service did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let secret = "hunter2-journal-secret";
    let out = ext(
        h,
        &[
            "invoke",
            "Contoso/Hello",
            "greet",
            &format!("password={secret}"),
        ],
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill with a pid we spawned and a valid signal number.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    child.wait()?;
    let journal = std::fs::read_to_string(&journal)?;
    let file = std::fs::read_to_string(h.join("logs/tether.log"))?;
    for (what, text) in [("journal", &journal), ("log file", &file)] {
        assert!(text.contains("hello: greeting password="), "{what}: {text}");
        assert!(!text.contains(secret), "{what}: {text}");
        assert!(text.contains("[REDACTED]"), "{what}: {text}");
    }
    Ok(())
}

#[test]
fn files_are_granted_only_where_the_operator_allows_and_links_never_lead_out() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let work = tempfile::tempdir()?;
    let w = std::fs::canonicalize(work.path())?;
    let contoso = Publisher::new("Contoso", 31);
    trust(h, &contoso)?;
    let (read_dir, write_dir) = (w.join("grant-read"), w.join("grant-write"));
    std::fs::create_dir_all(&read_dir)?;
    std::fs::create_dir_all(&write_dir)?;
    std::fs::write(read_dir.join("ok.txt"), "granted text")?;
    // A link planted inside the grant, leading out of it.
    std::os::unix::fs::symlink("/etc/passwd", read_dir.join("escape"))?;
    let files_package = |name: &str, read: &Path, write: &Path| {
        package(
            &contoso,
            "Contoso",
            name,
            "1.0.0",
            "other",
            tether_test_artifacts::FIXTURE_FS_ESCAPE,
            &format!(
                "[capabilities]\nread_paths = [\"{}\"]\nwrite_paths = [\"{}\"]\n",
                read.display(),
                write.display()
            ),
        )
    };
    let pkg = write(
        &w,
        "files.tpkg",
        &files_package("Files", &read_dir, &write_dir)?,
    )?;

    // Declared but not allowed: refused, naming the setting.
    let out = ext(h, &["install", &pkg])?;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("extensions.files.allowed"),
        "{}",
        stderr(&out)
    );
    assert!(!h.join("extensions/Contoso/Files").exists());

    let allow = tether(h)
        .args(["config", "set", "extensions.files.allowed"])
        .arg(&w)
        .arg("--add")
        .output()?;
    assert!(allow.status.success(), "{}", stderr(&allow));
    let out = ext(h, &["install", &pkg])?;
    assert!(out.status.success(), "{}", stderr(&out));
    // `extension show` says what it holds.
    let shown: Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "show", "Contoso/Files"])
            .output()?
            .stdout,
    )?;
    assert_eq!(
        shown["granted"]["readPaths"],
        json!([read_dir.display().to_string()]),
        "{shown}"
    );
    assert_eq!(
        shown["granted"]["writePaths"],
        json!([write_dir.display().to_string()])
    );
    assert_eq!(shown["granted"]["outbound"], json!([]));
    let invoke = |args: &[&str]| {
        let mut all = vec!["invoke", "Contoso/Files"];
        all.extend_from_slice(args);
        ext(h, &all)
    };
    let ok = invoke(&["read", &read_dir.join("ok.txt").display().to_string()])?;
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("granted text"));
    // Out through the planted link, or straight to a file never granted.
    for path in [
        read_dir.join("escape"),
        std::path::PathBuf::from("/etc/passwd"),
    ] {
        let out = invoke(&["read", &path.display().to_string()])?;
        assert_eq!(
            out.status.code(),
            Some(20),
            "{}: {}",
            path.display(),
            stdout(&out)
        );
        assert!(!stdout(&out).contains("root:"), "{}", stdout(&out));
    }
    // Read-only where read was granted; writable where write was.
    let out = invoke(&[
        "write",
        &read_dir.join("new.txt").display().to_string(),
        "x",
    ])?;
    assert_eq!(out.status.code(), Some(20), "{}", stdout(&out));
    assert!(!read_dir.join("new.txt").exists());
    let out = invoke(&[
        "write",
        &write_dir.join("out.txt").display().to_string(),
        "written",
    ])?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(write_dir.join("out.txt"))?,
        "written"
    );

    // The grant is checked again at every load: a directory swapped for a
    // link to /etc after admission is no longer granted.
    std::fs::remove_dir_all(&read_dir)?;
    std::os::unix::fs::symlink("/etc", &read_dir)?;
    let out = invoke(&["read", &read_dir.join("passwd").display().to_string()])?;
    assert!(!out.status.success());
    assert!(!stdout(&out).contains("root:"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no longer granted"),
        "{}",
        stderr(&out)
    );

    // The state root is never grantable, even under an allowed prefix.
    let parent = h.parent().unwrap_or(h).to_path_buf();
    let allow = tether(h)
        .args(["config", "set", "extensions.files.allowed"])
        .arg(&parent)
        .arg("--add")
        .output()?;
    assert!(allow.status.success(), "{}", stderr(&allow));
    let own = write(&w, "own.tpkg", &files_package("Own", h, &write_dir)?)?;
    let out = ext(h, &["install", &own])?;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("never") || stderr(&out).contains("not something"),
        "{}",
        stderr(&out)
    );
    Ok(())
}
