//! The Windows .msi, by wixl (Debian's msitools) from a WiX source rendered
//! here: the cross-built `tether.exe`, the license, the README, PowerShell
//! completions and the man pages under `Program Files\Tether`; the service
//! registered with the Service Control Manager and started; and three
//! deferred actions run as SYSTEM with the installed binary:
//!
//! - after the files are in place, `tether show`, which (as every command
//!   run as an administrator does) creates the state root under
//!   ProgramData, owned by Administrators with a protected DACL, and
//!   migrates older state; state of a newer schema fails it (exit 6), so
//!   the installation rolls back, as the .deb's pre-install check refuses;
//! - on removal with `PURGE=1` (`msiexec /x tether.msi PURGE=1 /qn`), the
//!   purge the .deb does: `tether disconnect --no-prompt` with the `tether
//!   login` session, else a local disconnect, then the state root removed.
//!   A plain removal keeps the state, as `apt-get remove` does.
//!
//! MajorUpgrade replaces an older Tether in place and refuses a downgrade.

use super::paths;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-pc-windows-gnu";

/// The product's identity across versions: what MajorUpgrade matches.
const UPGRADE_CODE: &str = "6f2b8e41-7c3d-4a59-b1e0-2d8c5a9f7e13";

#[derive(Debug, clap::Args)]
pub struct MsiArgs {
    /// The cargo profile whose cross-built `tether.exe` is packaged.
    #[arg(long, default_value = "release")]
    pub profile: String,
}

/// One file the package installs: its id in the MSI tables, its source
/// relative to the work directory (wixl takes no absolute sources).
struct Entry {
    id: String,
    source: PathBuf,
}

/// Copies `files` into `work/dir` and names them for the package.
fn stage(work: &Path, dir: &str, files: &[PathBuf]) -> Result<Vec<Entry>> {
    std::fs::create_dir_all(work.join(dir))?;
    let mut entries = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .with_context(|| format!("{} has no file name", file.display()))?;
        let source = Path::new(dir).join(name);
        std::fs::copy(file, work.join(&source))
            .with_context(|| format!("could not copy {}", file.display()))?;
        entries.push(Entry {
            // MSI identifiers: letters, digits, dots and underscores.
            id: format!(
                "{dir}_{}",
                name.to_string_lossy()
                    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_")
            ),
            source,
        });
    }
    Ok(entries)
}

fn listed(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("could not list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|f| keep(f));
    files.sort();
    Ok(files)
}

fn components(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| {
            format!(
                "            <Component Id=\"C_{id}\" Guid=\"*\" Win64=\"yes\"><File Id=\"{id}\" Source=\"{source}\" KeyPath=\"yes\"/></Component>\n",
                id = e.id,
                source = e.source.display()
            )
        })
        .collect()
}

fn refs(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("      <ComponentRef Id=\"C_{}\"/>\n", e.id))
        .collect()
}

/// The WiX source of the package.
fn source(
    version: &str,
    exe: &Path,
    docs: &[Entry],
    completions: &[Entry],
    man: &[Entry],
) -> String {
    let state = "[CommonAppDataFolder]Tether";
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="Tether" Language="1033" Version="{version}" Manufacturer="Tether" UpgradeCode="{UPGRADE_CODE}">
    <Package InstallerVersion="500" Compressed="yes" InstallScope="perMachine" Description="Tether, the machine agent for a cloud control plane"/>
    <MajorUpgrade DowngradeErrorMessage="A newer version of Tether is installed; remove it first to go back (the state it ran on may not be readable by this version)."/>
    <Media Id="1" Cabinet="tether.cab" EmbedCab="yes"/>
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFiles64Folder">
        <Directory Id="INSTALLDIR" Name="Tether">
          <Component Id="C_agent" Guid="*" Win64="yes">
            <File Id="tether.exe" Source="{exe}" KeyPath="yes"/>
            <ServiceInstall Id="Service" Name="tether" DisplayName="Tether agent" Description="Heartbeats, local metadata and identity, and sandboxed extensions" Type="ownProcess" Start="auto" ErrorControl="normal" Account="LocalSystem" Arguments="service run"/>
            <ServiceControl Id="ServiceControl" Name="tether" Start="install" Stop="both" Remove="uninstall" Wait="yes"/>
          </Component>
{docs}          <Directory Id="COMPLETIONS" Name="completions">
{completions}          </Directory>
          <Directory Id="MAN" Name="man">
{man}          </Directory>
        </Directory>
      </Directory>
    </Directory>
    <CustomAction Id="PrepareState" FileKey="tether.exe" ExeCommand="show" Execute="deferred" Impersonate="no" Return="check"/>
    <CustomAction Id="RetireInCloud" FileKey="tether.exe" ExeCommand="disconnect --no-prompt" Execute="deferred" Impersonate="no" Return="ignore"/>
    <CustomAction Id="RetireLocally" FileKey="tether.exe" ExeCommand="disconnect --force-local-only" Execute="deferred" Impersonate="no" Return="ignore"/>
    <CustomAction Id="FindShell" Property="SHELL" Value="[System64Folder]cmd.exe"/>
    <CustomAction Id="RemoveState" Property="SHELL" ExeCommand="/c rmdir /s /q &quot;{state}&quot;" Execute="deferred" Impersonate="no" Return="ignore"/>
    <InstallExecuteSequence>
      <Custom Action="PrepareState" After="InstallFiles">NOT REMOVE</Custom>
      <!-- After the service is stopped and deleted, before the files go
           (wixl orders custom actions by explicit sequence numbers only). -->
      <Custom Action="FindShell" Sequence="3400">REMOVE="ALL" AND PURGE="1"</Custom>
      <Custom Action="RetireInCloud" Sequence="3401">REMOVE="ALL" AND PURGE="1"</Custom>
      <Custom Action="RetireLocally" Sequence="3402">REMOVE="ALL" AND PURGE="1"</Custom>
      <Custom Action="RemoveState" Sequence="3403">REMOVE="ALL" AND PURGE="1"</Custom>
    </InstallExecuteSequence>
    <Feature Id="Agent" Level="1">
      <ComponentRef Id="C_agent"/>
{doc_refs}{completion_refs}{man_refs}    </Feature>
  </Product>
</Wix>
"#,
        exe = exe.display(),
        docs = components(docs),
        completions = components(completions),
        man = components(man),
        doc_refs = refs(docs),
        completion_refs = refs(completions),
        man_refs = refs(man),
    )
}

/// Builds the package; returns its path.
pub fn build(args: &MsiArgs) -> Result<PathBuf> {
    let version = tether::version::VERSION;
    let exe = paths::target()
        .join(TARGET)
        .join(super::stage::profile_dir(&args.profile))
        .join("tether.exe");
    anyhow::ensure!(
        exe.is_file(),
        "{} is not there: cross-build it first (`rustup target add {TARGET}`, Debian's gcc-mingw-w64-x86-64, then `cargo build -p tether --target {TARGET}{}`)",
        exe.display(),
        if args.profile == "release" {
            " --release"
        } else {
            ""
        }
    );
    let assets = super::assets::render(&format!("{version}-1"))?;
    let work = paths::dist().join("msi");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    std::fs::copy(&exe, work.join("tether.exe"))?;
    let workspace = paths::workspace();
    std::fs::copy(workspace.join("LICENSE"), work.join("LICENSE.txt"))?;
    let docs = stage(
        &work,
        "docs",
        &[work.join("LICENSE.txt"), workspace.join("README.md")],
    )?;
    let completions = stage(
        &work,
        "completions",
        &listed(&assets.join("completions"), |f| {
            f.extension().is_some_and(|x| x == "ps1")
        })?,
    )?;
    let man = stage(&work, "man", &listed(&assets.join("man"), |_| true)?)?;
    std::fs::write(
        work.join("tether.wxs"),
        source(version, Path::new("tether.exe"), &docs, &completions, &man),
    )?;
    let msi = paths::dist().join(format!("tether-{version}-x64.msi"));
    let status = Command::new("wixl")
        .current_dir(&work)
        .args(["-a", "x64", "-o"])
        .arg(&msi)
        .arg("tether.wxs")
        .status()
        .context("could not run wixl: install Debian's wixl (and msitools) package")?;
    anyhow::ensure!(
        status.success(),
        "wixl failed on {}",
        work.join("tether.wxs").display()
    );
    Ok(msi)
}
