//! `tether-ext`: from a new extension to a signed package in five commands:
//!
//! ```text
//! tether-ext keygen --publisher Contoso     # Contoso.key, and the public key line for operators
//! tether-ext new my-ext --publisher Contoso # a crate on tether-sdk, with extension.toml
//! tether-ext build --dir my-ext             # cargo build for wasm32-wasip2
//! tether-ext pack --dir my-ext              # my-ext-0.1.0.tpkg, unsigned
//! tether-ext sign my-ext-0.1.0.tpkg --key Contoso.key
//! ```

use tether_ext::scaffold;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tether_package::{Manifest, ReadLimits};

#[derive(Parser)]
#[command(
    name = "tether-ext",
    version,
    about = "Build, pack and sign Tether extensions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a publisher key pair: the private key file (owner-only) and the
    /// public key line to hand to operators (`tether extension trust add`).
    Keygen {
        #[arg(long)]
        publisher: String,
        /// Where to write the private key (default: PUBLISHER.key).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Make a ready-to-build extension: a crate on tether-sdk, or a Python
    /// or JavaScript app on that language's SDK.
    New {
        name: String,
        #[arg(long, default_value = "Contoso")]
        publisher: String,
        /// The language the extension is written in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: scaffold::Lang,
        /// The parent directory (default: here).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build the extension in --dir into a component: cargo for
    /// wasm32-wasip2 (release), componentize-py for Python,
    /// componentize-js for JavaScript.
    Build {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Cargo's target directory (default: DIR/target).
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
    /// Pack the built component with its manifest (unsigned).
    Pack {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The component (default: what `build` made).
        #[arg(long)]
        component: Option<PathBuf>,
        /// Cargo's target directory `build` used (default: DIR/target).
        #[arg(long)]
        target_dir: Option<PathBuf>,
        /// The package (default: NAME-VERSION.tpkg in --dir).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Sign a package's manifest with a publisher key.
    Sign {
        package: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// Write the signed package here (default: in place).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a package: well formed, digest, and signature (by one of the
    /// given public keys, if any).
    Verify {
        package: PathBuf,
        /// A trusted public key (the keygen line, its base64, or a file holding it).
        #[arg(long)]
        key: Vec<String>,
    },
    /// Show a package's manifest and signature.
    Inspect {
        package: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn random_key() -> Result<ed25519_dalek::SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    if path.exists() {
        bail!(
            "{} exists; refusing to overwrite a key (move it away first)",
            path.display()
        );
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("could not create {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    Ok(())
}

fn read_package(path: &Path) -> Result<tether_package::Package> {
    let bytes =
        std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    tether_package::read(&bytes, ReadLimits::default())
        .with_context(|| format!("{} is not a usable package", path.display()))
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Keygen { publisher, out } => {
            let key = random_key()?;
            let path = out.unwrap_or_else(|| PathBuf::from(format!("{publisher}.key")));
            write_private(
                &path,
                &tether_package::write_private_key(&key).map_err(anyhow::Error::msg)?,
            )?;
            eprintln!(
                "wrote the private key to {} (keep it secret; it signs as {publisher})",
                path.display()
            );
            println!(
                "{}",
                tether_package::public_key_line(&key.verifying_key(), &publisher)
            );
            Ok(())
        }
        Command::New {
            name,
            publisher,
            lang,
            dir,
        } => {
            let made = scaffold::new(&dir, &name, &publisher, lang)?;
            println!("{}", made.display());
            Ok(())
        }
        Command::Build { dir, target_dir } => {
            let wasm = scaffold::build(&dir, target_dir.as_deref())?;
            println!("{}", wasm.display());
            Ok(())
        }
        Command::Pack {
            dir,
            component,
            target_dir,
            out,
        } => {
            let component = match component {
                Some(c) => c,
                None => scaffold::built_component(&dir, target_dir.as_deref())?,
            };
            let bytes = std::fs::read(&component).with_context(|| {
                format!(
                    "could not read the component {}; run `tether-ext build` first",
                    component.display()
                )
            })?;
            let template = std::fs::read_to_string(dir.join("extension.toml"))
                .with_context(|| format!("no extension.toml in {}", dir.display()))?;
            let manifest_text = Manifest::complete(&template, &bytes).context("extension.toml")?;
            let manifest = Manifest::parse(manifest_text.as_bytes()).context("extension.toml")?;
            let package = tether_package::build(manifest_text.as_bytes(), &bytes, None)?;
            let out = out.unwrap_or_else(|| {
                dir.join(format!("{}-{}.tpkg", manifest.name, manifest.version))
            });
            std::fs::write(&out, package)
                .with_context(|| format!("could not write {}", out.display()))?;
            println!("{}", out.display());
            Ok(())
        }
        Command::Sign { package, key, out } => {
            let pem = std::fs::read_to_string(&key)
                .with_context(|| format!("could not read the key {}", key.display()))?;
            let key = tether_package::read_private_key(&pem).map_err(anyhow::Error::msg)?;
            let pkg = read_package(&package)?;
            pkg.check_component()?;
            let signature = tether_package::sign(&pkg.manifest_bytes, &key);
            let bytes =
                tether_package::build(&pkg.manifest_bytes, &pkg.component, Some(&signature))?;
            let out = out.unwrap_or(package);
            std::fs::write(&out, bytes)?;
            eprintln!("signed {} with key {}", pkg.manifest.id(), signature.key_id);
            println!("{}", out.display());
            Ok(())
        }
        Command::Verify { package, key } => {
            let pkg = read_package(&package)?;
            pkg.check_component()?;
            let keys = key
                .iter()
                .map(|k| {
                    let text = if Path::new(k).is_file() {
                        std::fs::read_to_string(k).unwrap_or_default()
                    } else {
                        k.clone()
                    };
                    tether_package::parse_public_key(&text).map_err(anyhow::Error::msg)
                })
                .collect::<Result<Vec<_>>>()?;
            if keys.is_empty() {
                let sig = pkg
                    .signature
                    .as_ref()
                    .ok_or(tether_package::PackageError::Unsigned)?;
                println!(
                    "{}: well formed, digest matches, signed by key {} (not checked: give --key to check it)",
                    pkg.manifest.id(),
                    sig.key_id
                );
            } else {
                let id = pkg.verify_signature(&keys)?;
                println!(
                    "{} {}: well formed, digest matches, signature by key {id} verifies",
                    pkg.manifest.id(),
                    pkg.manifest.version
                );
            }
            Ok(())
        }
        Command::Inspect { package, json } => {
            let pkg = read_package(&package)?;
            let digest = pkg.check_component().err().map(|e| e.to_string());
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "id": pkg.manifest.id(),
                        "manifest": pkg.manifest,
                        "keyId": pkg.signature.as_ref().map(|s| &s.key_id),
                        "digestOk": digest.is_none(),
                    }))?
                );
            } else {
                print!("{}", String::from_utf8_lossy(&pkg.manifest_bytes));
                println!(
                    "# signature: {}",
                    pkg.signature
                        .as_ref()
                        .map(|s| format!("key {}", s.key_id))
                        .unwrap_or_else(|| "none".into())
                );
                println!(
                    "# component: {}",
                    digest.unwrap_or_else(|| "matches the manifest".into())
                );
            }
            Ok(())
        }
    }
}
