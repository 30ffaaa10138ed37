//! `hello`: the smallest complete Tether extension. It logs every lifecycle
//! call and answers `invoke greet NAME…` with a greeting.

use tether_sdk::{Error, Extension, info};

struct Hello;

impl Extension for Hello {
    fn install() -> Result<(), Error> {
        info!("hello: install");
        Ok(())
    }

    fn enable() -> Result<(), Error> {
        info!("hello: enable");
        Ok(())
    }

    fn disable() -> Result<(), Error> {
        info!("hello: disable");
        Ok(())
    }

    fn update(from_version: &str) -> Result<(), Error> {
        info!("hello: update from {from_version}");
        Ok(())
    }

    fn uninstall() -> Result<(), Error> {
        info!("hello: uninstall");
        Ok(())
    }

    fn invoke(command: &str, args: &[String]) -> Result<String, Error> {
        match command {
            "greet" => {
                if args.is_empty() {
                    return Err(Error::invalid_argument("usage: greet NAME"));
                }
                let name = args.join(" ");
                info!("hello: greeting {name}");
                Ok(format!("Hello, {name}!"))
            }
            // One host call and nothing else: what the benchmarks measure.
            "ping" => {
                tether_sdk::log(tether_sdk::Level::Trace, "ping");
                Ok(String::new())
            }
            other => Err(Error::unknown_command(other)),
        }
    }
}

tether_sdk::export_extension!(Hello);
