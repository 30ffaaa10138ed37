//! reset (background unregistration) and its status, login/logout
//! sessions, the log bundle, and the license.

use crate::support::*;
use serde_json::Value;
use std::io::Read;

fn connect_with(home: &std::path::Path, config: &std::path::Path, name: &str) -> TestResult {
    let out = tether(home)
        .args(["connect", "--config"])
        .arg(config)
        .args(["--resource-name", name])
        .output()?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(())
}

#[test]
fn reset_in_the_background_then_status_then_connect_again() -> TestResult {
    let cloud = Cloud::start()?;
    let admin = cloud.config_file("administrator")?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    connect_with(h, &admin, "r1")?;
    let started = tether(h)
        .args(["--json", "reset", "--config"])
        .arg(&admin)
        .output()?;
    assert!(started.status.success(), "{}", stderr(&started));
    let op: Value = serde_json::from_slice(&started.stdout)?;
    let id = op["id"].as_str().unwrap_or_default().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let out = tether(h).args(["--json", "reset", "status"]).output()?;
        let status: Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(status["id"], id.as_str());
        if status["state"] != "Running" {
            break status;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the reset never finished: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status["state"], "Succeeded", "{status}");
    assert_eq!(status["percentComplete"], 100);
    assert!(cloud.machines()?.is_empty());
    assert!(!h.join("registration.json").exists());
    // Ready to connect again, without reinstalling; the token file is gone.
    let leftovers: Vec<_> = std::fs::read_dir(h.join("operations"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    connect_with(h, &admin, "r1")?;

    let waited = tether(h)
        .args(["reset", "--wait", "--config"])
        .arg(&admin)
        .output()?;
    assert!(waited.status.success(), "{}", stderr(&waited));
    assert!(stderr(&waited).contains("100% done"), "{}", stderr(&waited));
    assert!(stdout(&waited).contains("Succeeded"));
    assert!(cloud.machines()?.is_empty());
    Ok(())
}

#[test]
fn a_login_session_serves_connect_and_disconnect_and_logout_shows_it() -> TestResult {
    let cloud = Cloud::start()?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let admin = cloud.config_file("administrator")?;
    let login = tether(h)
        .args(["login", "--config"])
        .arg(&admin)
        .args([
            "--tenant-id",
            &cloud.tenant(),
            "--cloud",
            &cloud.cloud.metadata_url(),
        ])
        .output()?;
    assert!(login.status.success(), "{}", stderr(&login));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(h.join("login.json"))?
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    // Only the target: the session signs in.
    let target = cloud.dir.path().join("target.json");
    std::fs::write(&target, serde_json::to_vec(&cloud.target())?)?;
    connect_with(h, &target, "s1")?;
    assert_eq!(cloud.machines()?.len(), 1);
    let out = tether(h).args(["disconnect"]).output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(cloud.machines()?.is_empty());
    assert!(
        !h.join("login.json").exists(),
        "a successful disconnect clears the session"
    );

    assert!(
        tether(h)
            .args(["login", "--config"])
            .arg(&admin)
            .args([
                "--tenant-id",
                &cloud.tenant(),
                "--cloud",
                &cloud.cloud.metadata_url()
            ])
            .status()?
            .success()
    );
    let out = tether(h).args(["--json", "logout"]).output()?;
    let cleared: Value = serde_json::from_slice(&out.stdout)?;
    let c = &cleared["cleared"];
    assert_eq!(c["ClientId"], cloud.demo["administrator"]["clientId"]);
    assert_eq!(c["TenantId"], cloud.tenant().as_str());
    assert_eq!(c["AuthType"], "ServicePrincipal");
    assert_eq!(c["TokenCredentialType"], "ClientSecretCredential");
    assert_eq!(c["Environment"], "TetherCloud");
    for field in ["Scopes", "Account", "CertificateThumbprint"] {
        assert!(c.get(field).is_some(), "{field} missing: {c}");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(
            cloud.demo["administrator"]["secret"]
                .as_str()
                .unwrap_or("?")
        )
    );
    assert!(!text.contains("eyJ"), "a token was printed");
    let table = tether(h).args(["logout"]).output()?;
    assert!(stdout(&table).contains("No sign-in session"));
    Ok(())
}

#[test]
fn the_log_bundle_holds_no_secret() -> TestResult {
    let cloud = Cloud::start()?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    let admin = cloud.config_file("administrator")?;
    connect_with(h, &admin, "logs-1")?;
    assert!(
        tether(h)
            .args(["login", "--config"])
            .arg(&admin)
            .args([
                "--tenant-id",
                &cloud.tenant(),
                "--cloud",
                &cloud.cloud.metadata_url()
            ])
            .status()?
            .success()
    );
    let secret = cloud.demo["administrator"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    std::fs::create_dir_all(h.join("logs"))?;
    let jwt = "eyJhbGciOiJFZERTQSJ9.eyJvaWQiOiJwbGFudGVkIn0.cGxhbnRlZHNpZ25hdHVyZQ";
    std::fs::write(
        h.join("logs/tether.log"),
        format!(
            "2026-11-23 INFO started\nrequest body client_secret={secret}&grant_type=client_credentials\nAuthorization: Bearer {jwt}\n{{\"protectedSettings\": {{\"apiKey\": \"planted-api-key-9\"}}}}\npassword: planted-password-7\n-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPLANTEDPLANTEDPLANTEDPLANTEDPLANTEDPLANTEDPLA\n-----END PRIVATE KEY-----\n"
        ),
    )?;
    let key = std::fs::read_to_string(h.join("identity/machine.key"))?;
    let session = std::fs::read_to_string(h.join("login.json"))?;
    let zip_path = h.join("bundle.zip");
    let out = tether(h)
        .args(["logs", "--full", "--output"])
        .arg(&zip_path)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));

    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path)?)?;
    let mut everything = String::new();
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i)?;
        names.push(file.name()?.to_string());
        file.read_to_string(&mut everything)?;
    }
    assert!(
        names.iter().any(|n| n == "state/logs/tether.log"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "state/registration.json"),
        "{names:?}"
    );
    assert!(
        everything.contains("2026-11-23 INFO started"),
        "the log itself must be there"
    );
    for planted in [
        secret.as_str(),
        jwt,
        "planted-api-key-9",
        "planted-password-7",
        "PLANTEDPLANTED",
    ] {
        assert!(
            !everything.contains(planted),
            "{planted} leaked into the bundle"
        );
    }
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!everything.contains(&key_body), "the machine key leaked");
    let session_token = serde_json::from_str::<Value>(&session)?["accessToken"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    assert!(
        !everything.contains(&session_token),
        "the session token leaked"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("identity/") || n.contains("login.json")),
        "{names:?}"
    );
    Ok(())
}

#[test]
fn license_prints_the_license() -> TestResult {
    let home = tempfile::tempdir()?;
    let out = tether(home.path()).arg("license").output()?;
    assert!(out.status.success());
    assert!(stdout(&out).contains("Apache License"));
    Ok(())
}
