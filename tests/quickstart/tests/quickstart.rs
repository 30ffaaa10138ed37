//! The README's main-job command runs to completion, non-interactively.

use std::process::Command;

#[test]
fn the_quickstart_runs_the_whole_loop_and_leaves_nothing() -> anyhow::Result<()> {
    let quickstart = env!("CARGO_BIN_EXE_tether-quickstart");
    let tether = std::path::Path::new(quickstart).with_file_name("tether");
    anyhow::ensure!(
        tether.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace), which build it",
        tether.display()
    );
    let home = tempfile::tempdir()?;
    let out = Command::new(quickstart)
        .args([
            "--non-interactive",
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-interval",
            "2s",
            "--home",
        ])
        .arg(home.path())
        .arg("--tether")
        .arg(&tether)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for said in [
        "starting tether-cloud",
        "connecting this machine",
        "trusting the demo publisher",
        "machine quickstart is Connected",
        "extension hello 1.0.0: Succeeded",
        "extension inventory 1.0.0: Succeeded",
        // Its first scheduled collection, read through its file grants.
        "collection 1: ",
        "dpkg packages",
        "Hello, quickstart",
        "disconnecting",
        "done",
    ] {
        assert!(text.contains(said), "`{said}` not in:\n{text}");
    }
    assert!(!home.path().join("registration.json").exists());
    assert!(
        !home.path().join("extensions/tether.samples").exists(),
        "extensions removed"
    );
    Ok(())
}
