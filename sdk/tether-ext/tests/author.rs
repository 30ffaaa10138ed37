//! The author's flow, end to end with the real tool: keygen → new → build →
//! pack → sign → verify → inspect, on a freshly scaffolded extension; and
//! tampering caught by verify.

use std::path::Path;
use std::process::Command;

fn ext(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tether-ext"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("tether-ext {args:?}: {e}"))
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn from_new_to_a_signed_verified_package_in_five_commands() {
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let w = work.path();
    // A target dir that outlives the test, so reruns do not rebuild the SDK.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ext-author-test");
    let target = target.to_string_lossy().to_string();

    let public = ok(ext(w, &["keygen", "--publisher", "Contoso"]));
    assert!(
        public.starts_with("tether-ed25519 ") && public.ends_with(" Contoso"),
        "{public}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.join("Contoso.key"))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
    }
    assert!(
        !ext(w, &["keygen", "--publisher", "Contoso"])
            .status
            .success(),
        "a key must never be overwritten"
    );

    ok(ext(w, &["new", "fresh-ext", "--publisher", "Contoso"]));
    let dir = w.join("fresh-ext");
    let wasm = ok(ext(
        w,
        &["build", "--dir", "fresh-ext", "--target-dir", &target],
    ));
    assert!(wasm.ends_with("fresh_ext.wasm"), "{wasm}");
    let package = ok(ext(
        w,
        &["pack", "--dir", "fresh-ext", "--target-dir", &target],
    ));
    assert!(package.ends_with("fresh-ext-0.1.0.tpkg"), "{package}");
    let unsigned = ext(w, &["verify", &package]);
    assert!(!unsigned.status.success());
    assert!(String::from_utf8_lossy(&unsigned.stderr).contains("not signed"));
    ok(ext(w, &["sign", &package, "--key", "Contoso.key"]));

    let verified = ok(ext(w, &["verify", &package, "--key", &public]));
    assert!(
        verified.contains("Contoso/fresh-ext 0.1.0") && verified.contains("verifies"),
        "{verified}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(ext(w, &["inspect", &package, "--json"]))).unwrap_or_default();
    assert_eq!(inspect["id"], "Contoso/fresh-ext");
    assert_eq!(inspect["digestOk"], true);
    assert_eq!(inspect["manifest"]["category"], "monitoring");

    // Another publisher's key does not verify it.
    let other = ok(ext(w, &["keygen", "--publisher", "Fabrikam"]));
    let refused = ext(w, &["verify", &package, "--key", &other]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not trusted"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Tampering with the component after signing is caught by the digest.
    let bytes = std::fs::read(w.join(&package)).unwrap_or_else(|e| panic!("{package}: {e}"));
    let mut pkg =
        tether_package::read(&bytes, Default::default()).unwrap_or_else(|e| panic!("{e}"));
    pkg.component.push(0);
    let forged = tether_package::build(&pkg.manifest_bytes, &pkg.component, pkg.signature.as_ref())
        .unwrap_or_default();
    std::fs::write(dir.join("forged.tpkg"), forged).unwrap_or_else(|e| panic!("{e}"));
    let caught = ext(&dir, &["verify", "forged.tpkg", "--key", &public]);
    assert!(!caught.status.success());
    assert!(
        String::from_utf8_lossy(&caught.stderr).contains("does not match the manifest"),
        "{}",
        String::from_utf8_lossy(&caught.stderr)
    );
}

/// A missing toolchain is named, with how to install it; nothing is
/// downloaded and nothing is built.
#[test]
fn a_missing_language_toolchain_says_what_to_install() {
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let w = work.path();
    for (lang, tool, how) in [
        ("python", "componentize-py", "pip install componentize-py"),
        ("javascript", "componentize-js", "npm install"),
    ] {
        let name = format!("no-{lang}");
        ok(ext(w, &["new", &name, "--lang", lang]));
        let out = Command::new(env!("CARGO_BIN_EXE_tether-ext"))
            .current_dir(w)
            .args(["build", "--dir", &name])
            .env("PATH", w.join("nothing-here"))
            .env_remove("VIRTUAL_ENV")
            .output()
            .unwrap_or_else(|e| panic!("tether-ext build: {e}"));
        assert!(!out.status.success(), "{lang} built without {tool}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(&format!("{tool} is not installed")), "{said}");
        assert!(said.contains(how), "{said}");
        assert!(said.contains("never downloads"), "{said}");
        assert!(
            !w.join(&name)
                .join("target")
                .join(format!("{name}.wasm"))
                .exists()
        );
    }
}
