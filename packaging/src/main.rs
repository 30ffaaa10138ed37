//! `tether-dist`: builds Tether's packages from a built `tether` binary.
//!
//! `assets` renders what every package holds beside the binary (shell
//! completions and man pages from the CLI's own definition, the systemd
//! unit and the identity drop-in from the library, the maintainer scripts
//! with this build's version and state schema); `deb` packages them with
//! cargo-deb, `rpm` with cargo-generate-rpm, `msi` with wixl.

mod assets;
mod deb;
mod msi;
mod paths;
mod rpm;
mod stage;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "tether-dist")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render the generated assets into target/dist/assets.
    Assets {
        /// The package version the maintainer scripts are for.
        #[arg(long, default_value = concat!(env!("CARGO_PKG_VERSION"), "-1"))]
        version: String,
    },
    /// Build the .deb into target/dist (assets first).
    Deb(deb::DebArgs),
    /// Build the .rpm into target/dist (assets first).
    Rpm(rpm::RpmArgs),
    /// Build the Windows .msi into target/dist (assets first) with wixl.
    Msi(msi::MsiArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Assets { version } => {
            assets::render(&version).map(|dir| println!("{}", dir.display()))
        }
        Command::Deb(args) => deb::build(&args).map(|deb| println!("{}", deb.display())),
        Command::Rpm(args) => rpm::build(&args).map(|rpm| println!("{}", rpm.display())),
        Command::Msi(args) => msi::build(&args).map(|msi| println!("{}", msi.display())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether-dist: {e:#}");
            ExitCode::FAILURE
        }
    }
}
