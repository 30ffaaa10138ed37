//! `tether config`: every property's valid and invalid values, list edits,
//! concurrency, a broken file, monitor mode, and non-root refusal.

use crate::support::*;
use serde_json::Value;
use std::path::Path;

fn config(home: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(tether(home).arg("config").args(args).output()?)
}

fn get(home: &Path, key: &str) -> anyhow::Result<Value> {
    let out = tether(home)
        .args(["--json", "config", "get", key])
        .output()?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["value"].clone())
}

#[test]
fn every_property_accepts_its_values_and_refuses_others_with_the_reason() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let valid: &[(&str, &str, Value)] = &[
        (
            "proxy.url",
            "http://proxy.corp:3128",
            "http://proxy.corp:3128".into(),
        ),
        ("proxy.url", "", "".into()),
        ("proxy.bypass", "aad,ARM", serde_json::json!(["AAD", "ARM"])),
        (
            "extensions.allowlist",
            "Contoso/Inv,Fabrikam.X/Y-z_1",
            serde_json::json!(["Contoso/Inv", "Fabrikam.X/Y-z_1"]),
        ),
        (
            "extensions.blocklist",
            "Evil/Shell",
            serde_json::json!(["Evil/Shell"]),
        ),
        ("extensions.enabled", "false", false.into()),
        ("guestconfiguration.enabled", "FALSE", false.into()),
        ("incomingconnections.enabled", "true", true.into()),
        (
            "incomingconnections.ports",
            "22,3389",
            serde_json::json!([22, 3389]),
        ),
        ("extensions.agent.cpulimit", "100", 100.into()),
        ("config.mode", "monitor", "monitor".into()),
        ("config.mode", "full", "full".into()),
    ];
    for (key, value, expected) in valid {
        let out = config(h, &["set", key, value])?;
        assert!(out.status.success(), "{key}={value}: {}", stderr(&out));
        assert_eq!(&get(h, key)?, expected, "{key}");
    }
    let invalid: &[(&str, &str, &str)] = &[
        (
            "proxy.url",
            "https://proxy:443",
            "https proxies are not supported",
        ),
        (
            "proxy.url",
            "http://user:pw@proxy:3128",
            "must not contain credentials",
        ),
        ("proxy.url", "socks5://proxy:1080", "http://host[:port]"),
        ("proxy.url", "not a url", "not a URL"),
        (
            "proxy.bypass",
            "https://login.microsoftonline.com",
            "service names: AAD, ARM, Arc (not URLs)",
        ),
        ("extensions.allowlist", "NoSlash", "Publisher/Name"),
        ("extensions.blocklist", "a/b/c", "Publisher/Name"),
        ("extensions.enabled", "yes", "true or false"),
        ("guestconfiguration.enabled", "1", "true or false"),
        ("incomingconnections.enabled", "on", "true or false"),
        ("incomingconnections.ports", "0", "1 to 65535"),
        ("incomingconnections.ports", "65536", "1 to 65535"),
        ("extensions.agent.cpulimit", "0", "1 to 100"),
        ("extensions.agent.cpulimit", "101", "1 to 100"),
        ("config.mode", "audit", "full or monitor"),
        ("no.such.key", "x", "is not a setting"),
    ];
    let before = std::fs::read(h.join("settings.toml"))?;
    for (key, value, says) in invalid {
        let out = config(h, &["set", key, value])?;
        assert_eq!(out.status.code(), Some(23), "{key}={value}");
        let err = stderr(&out);
        assert!(err.contains(says), "{key}={value}: {err}");
        assert!(!err.contains("pw@"), "a credential was echoed: {err}");
    }
    assert_eq!(
        std::fs::read(h.join("settings.toml"))?,
        before,
        "a refused value changed the file"
    );
    // clear returns a property to its default.
    assert!(
        config(h, &["clear", "extensions.agent.cpulimit"])?
            .status
            .success()
    );
    assert_eq!(get(h, "extensions.agent.cpulimit")?, 5);
    Ok(())
}

#[test]
fn lists_are_edited_with_add_and_remove() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    assert!(
        config(h, &["set", "extensions.allowlist", "A/one,B/two"])?
            .status
            .success()
    );
    assert!(
        config(
            h,
            &["set", "extensions.allowlist", "C/three,a/ONE", "--add"]
        )?
        .status
        .success()
    );
    assert_eq!(
        get(h, "extensions.allowlist")?,
        serde_json::json!(["A/one", "B/two", "C/three"])
    );
    assert!(
        config(h, &["set", "extensions.allowlist", "b/two", "--remove"])?
            .status
            .success()
    );
    assert_eq!(
        get(h, "extensions.allowlist")?,
        serde_json::json!(["A/one", "C/three"])
    );
    assert!(
        config(h, &["set", "incomingconnections.ports", "22", "--add"])?
            .status
            .success()
    );
    assert!(
        config(h, &["set", "incomingconnections.ports", "22,443", "--add"])?
            .status
            .success()
    );
    assert_eq!(
        get(h, "incomingconnections.ports")?,
        serde_json::json!([22, 443])
    );
    let out = config(h, &["set", "config.mode", "monitor", "--add"])?;
    assert_eq!(out.status.code(), Some(23));
    assert!(stderr(&out).contains("not a list"));
    let text = tether(h)
        .args(["config", "get", "extensions.allowlist"])
        .output()?;
    assert_eq!(stdout(&text), "A/one,C/three\n");
    Ok(())
}

#[test]
fn concurrent_sets_all_land() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let children: Vec<_> = (0..8)
        .map(|i| {
            tether(h)
                .args([
                    "config",
                    "set",
                    "extensions.allowlist",
                    &format!("P{i}/N{i}"),
                    "--add",
                ])
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut child in children {
        assert!(child.wait()?.success());
    }
    let list = get(h, "extensions.allowlist")?;
    let entries = list.as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(entries, 8, "a concurrent change was lost: {list}");
    Ok(())
}

#[test]
fn a_broken_file_is_reported_and_never_overwritten() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    let broken =
        "[proxy]\nurl = \"http://p:1\"\n\n[extensions]\nallowlist = [\"A/b\"\nenabled = true\n";
    std::fs::write(h.join("settings.toml"), broken)?;
    for args in [
        &["list"][..],
        &["get", "proxy.url"],
        &["set", "proxy.url", "http://q:2"],
        &["clear", "proxy.url"],
    ] {
        let out = config(h, args)?;
        assert_eq!(out.status.code(), Some(5), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("settings.toml is broken") && err.contains("line "),
            "{args:?}: {err}"
        );
        assert!(err.contains("will not overwrite"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(h.join("settings.toml"))?, broken);
    // A typo'd key is refused too, not ignored.
    std::fs::write(h.join("settings.toml"), "[proxy]\nurll = \"http://p:1\"\n")?;
    let out = config(h, &["list"])?;
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("unknown field `urll`"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn monitor_mode_freezes_the_extension_lists_and_full_mode_keeps_them() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    assert!(
        config(h, &["set", "extensions.blocklist", "Evil/Shell"])?
            .status
            .success()
    );
    assert!(
        config(h, &["set", "config.mode", "monitor"])?
            .status
            .success()
    );
    for args in [
        &["set", "extensions.blocklist", "X/y", "--add"][..],
        &["set", "extensions.allowlist", "A/b"],
        &["clear", "extensions.blocklist"],
    ] {
        let out = config(h, args)?;
        assert_eq!(out.status.code(), Some(7), "{args:?}");
        assert!(
            stderr(&out).contains("config.mode is monitor"),
            "{}",
            stderr(&out)
        );
    }
    // Other settings still change in monitor mode.
    assert!(
        config(h, &["set", "extensions.agent.cpulimit", "10"])?
            .status
            .success()
    );
    assert!(config(h, &["set", "config.mode", "full"])?.status.success());
    assert_eq!(
        get(h, "extensions.blocklist")?,
        serde_json::json!(["Evil/Shell"])
    );
    Ok(())
}

#[test]
fn changing_settings_needs_root_and_reading_does_not() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    assert!(
        config(h, &["set", "proxy.url", "http://p:1"])?
            .status
            .success()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(h, std::fs::Permissions::from_mode(0o755))?;
    }
    for args in [
        &["config", "set", "proxy.url", "http://q:2"][..],
        &["config", "clear", "proxy.url"],
    ] {
        let out = tether_unprivileged(h).args(args).output()?;
        assert_eq!(out.status.code(), Some(18), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("needs root or administrator rights"),
            "{}",
            stderr(&out)
        );
    }
    let read = tether_unprivileged(h)
        .args(["config", "get", "proxy.url"])
        .output()?;
    assert!(read.status.success(), "{}", stderr(&read));
    assert_eq!(stdout(&read), "http://p:1\n");
    Ok(())
}

#[test]
fn info_explains_every_property() -> TestResult {
    let home = tempfile::tempdir()?;
    let out = tether(home.path())
        .args(["--json", "config", "info"])
        .output()?;
    let items: Vec<Value> = serde_json::from_slice(&out.stdout)?;
    assert_eq!(items.len(), 16);
    // azcmagent's settings for parts Tether lacks say so, and only they.
    let inert: Vec<&str> = items
        .iter()
        .filter(|i| i["effect"] != "as described")
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert_eq!(
        inert,
        [
            "guestconfiguration.enabled",
            "guestconfiguration.agent.cpulimit",
            "incomingconnections.enabled",
            "incomingconnections.ports"
        ]
    );
    for item in &items {
        for field in ["meaning", "format", "default", "example"] {
            assert!(
                item[field].as_str().is_some_and(|s| !s.is_empty()),
                "{item}"
            );
        }
        assert!(
            item["example"]
                .as_str()
                .unwrap_or_default()
                .starts_with("tether config set")
        );
    }
    let one = tether(home.path())
        .args(["config", "info", "proxy.bypass"])
        .output()?;
    assert!(stdout(&one).contains("AAD, ARM, Arc"));
    assert!(!stdout(&one).contains("effect:"));
    let inert = tether(home.path())
        .args(["config", "info", "incomingconnections.ports"])
        .output()?;
    assert!(
        stdout(&inert).contains("effect:  none. Tether accepts no incoming connections"),
        "{}",
        stdout(&inert)
    );
    // It is still a setting scripts can set and read back, checked as azcmagent's.
    let set = tether(home.path())
        .args(["config", "set", "guestconfiguration.agent.cpulimit", "10"])
        .output()?;
    assert!(set.status.success(), "{}", stderr(&set));
    let bad = tether(home.path())
        .args(["config", "set", "guestconfiguration.agent.cpulimit", "0"])
        .output()?;
    assert_eq!(bad.status.code(), Some(23));
    assert_eq!(
        stdout(
            &tether(home.path())
                .args(["config", "get", "guestconfiguration.agent.cpulimit"])
                .output()?
        ),
        "10\n"
    );
    Ok(())
}
