//! The contract's versions: an extension built against the frozen
//! `tether:extension@0.1.0` still installs and runs unchanged beside ones
//! built against 0.2.0, through the imports the host adapts; a version the
//! host does not provide is refused at admission.

use crate::extensions::{Publisher, completed_package, ext, trust, write};
use crate::support::*;
use tether_test_artifacts as artifacts;

fn signed(signer: &Publisher, name: &str, contract: &str, wasm: &str) -> anyhow::Result<Vec<u8>> {
    let template = format!(
        "publisher = \"Contoso\"\nname = \"{name}\"\nversion = \"1.0.0\"\ncontract = \"{contract}\"\ncategory = \"tools\"\n"
    );
    completed_package(signer, &template, wasm)
}

#[test]
fn a_component_built_against_0_1_0_still_runs_beside_0_2_0_ones() -> TestResult {
    let home = tempfile::tempdir()?;
    let h = home.path();
    // Unsigned, in a development run: every 0.1.0 import answers.
    let out = tether(h)
        .args([
            "extension",
            "run-local",
            artifacts::FIXTURE_CONTRACT_V0_1_0,
            "invoke",
            "check",
        ])
        .args(["--settings", r#"{"greeting":"hi"}"#])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let os = if cfg!(windows) { "windows" } else { "linux" };
    assert_eq!(
        stdout(&out),
        format!("kv=yes keys=1 status=not-connected os={os} greeting=\"hi\"\n")
    );

    // Signed and installed as 0.1.0, beside hello built against 0.2.0.
    let contoso = Publisher::new("Contoso", 71);
    trust(h, &contoso)?;
    let work = tempfile::tempdir()?;
    let old = write(
        work.path(),
        "old.tpkg",
        &signed(&contoso, "Old", "0.1.0", artifacts::FIXTURE_CONTRACT_V0_1_0)?,
    )?;
    let new = write(
        work.path(),
        "new.tpkg",
        &signed(&contoso, "Hello", "0.2.0", artifacts::HELLO)?,
    )?;
    for package in [&old, &new] {
        let out = ext(h, &["install", package])?;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = ext(h, &["invoke", "Contoso/Old", "check"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("kv=yes keys=1 status=not-connected"),
        "{}",
        stdout(&out)
    );
    let out = ext(h, &["invoke", "Contoso/Hello", "greet", "new"])?;
    assert_eq!(stdout(&out), "Hello, new!\n", "{}", stderr(&out));
    // The 0.1.0 component's status reached its record through the adapter.
    let show: serde_json::Value = serde_json::from_slice(
        &tether(h)
            .args(["--json", "extension", "show", "Contoso/Old"])
            .output()?
            .stdout,
    )?;
    assert_eq!(show["message"], "checked by a 0.1.0 component", "{show}");

    // A contract this host does not provide: refused, naming what it does.
    let future = write(
        work.path(),
        "future.tpkg",
        &signed(&contoso, "Future", "0.3.0", artifacts::HELLO)?,
    )?;
    let out = ext(h, &["install", &future])?;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("built for tether:extension@0.3.0; this host provides 0.2.0 and 0.1.0"),
        "{}",
        stderr(&out)
    );
    Ok(())
}
