//! `tether extension run-local`: runs an unsigned component for
//! development, with default limits and nothing granted but what the
//! developer names. Never used for installed extensions.

use crate::runtime::{
    CacheOutcome, Call, CallOutcome, ExtensionSpec, GuestError, HostPattern, Limits, MachineInfo,
    MachineView, OutboundGrant, Runtime, RuntimeOptions,
};
use crate::state::StateRoot;
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunLocal {
    pub component: PathBuf,
    pub call: Call,
    pub limits: Limits,
    pub settings: Map<String, Value>,
    pub protected_settings: Map<String, Value>,
    pub outbound: Vec<HostPattern>,
    pub use_cache: bool,
}

/// What happened.
#[derive(Debug)]
pub struct RunLocalReport {
    pub extension: String,
    pub call: String,
    pub cache: CacheOutcome,
    pub result: Result<CallOutcome, GuestError>,
    /// Logs of a failed call (a successful call carries its own).
    pub failure_logs: Vec<crate::runtime::LogRecord>,
}

/// Parses a `CALL [ARGS…]` command line: `install`, `enable`, `disable`,
/// `uninstall`, `update FROM-VERSION`, or `invoke COMMAND [ARGS…]`.
pub fn parse_call(words: &[String]) -> Result<Call> {
    let Some((first, rest)) = words.split_first() else {
        bail!(
            "no call given: name one of install, enable, disable, uninstall, update VERSION, invoke COMMAND [ARGS…]"
        );
    };
    let no_args = |call: Call| -> Result<Call> {
        if rest.is_empty() {
            Ok(call)
        } else {
            bail!("`{first}` takes no arguments, but got {rest:?}")
        }
    };
    match first.as_str() {
        "install" => no_args(Call::Install),
        "enable" => no_args(Call::Enable),
        "disable" => no_args(Call::Disable),
        "uninstall" => no_args(Call::Uninstall),
        "update" => match rest {
            [from] => Ok(Call::Update {
                from_version: from.clone(),
            }),
            _ => bail!(
                "`update` takes exactly one argument, the version being replaced (for example `update 1.0.0`)"
            ),
        },
        "invoke" => match rest.split_first() {
            Some((command, args)) => Ok(Call::Invoke {
                command: command.clone(),
                args: args.to_vec(),
            }),
            None => bail!("`invoke` needs a command (for example `invoke greet World`)"),
        },
        other => bail!(
            "`{other}` is not a call; name one of install, enable, disable, uninstall, update VERSION, invoke COMMAND [ARGS…]"
        ),
    }
}

/// Reads settings given as JSON text or as `@FILE` holding JSON; they must
/// be an object.
pub fn parse_settings(text: &str, what: &str) -> Result<Map<String, Value>> {
    let (json, source) = match text.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("could not read {what} from {path}"))?,
            path.to_string(),
        ),
        None => (text.to_string(), "the command line".to_string()),
    };
    // Protected settings are secret: their parse error must not echo them.
    let value: Value = serde_json::from_str(&json).map_err(|e| {
        anyhow::anyhow!(
            "{what} from {source} are not valid JSON (line {}, column {}); give a JSON object such as '{{\"key\": \"value\"}}'",
            e.line(),
            e.column()
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => bail!("{what} from {source} must be a JSON object such as '{{\"key\": \"value\"}}'"),
    }
}

/// Limits from the developer's flags.
pub fn limits(memory_mib: u64, timeout_ms: u64) -> Limits {
    Limits::new(memory_mib, Duration::from_millis(timeout_ms))
}

/// Runs one call of a component.
pub fn run_local(state: &StateRoot, request: RunLocal) -> Result<RunLocalReport> {
    let bytes = std::fs::read(&request.component).with_context(|| {
        format!(
            "could not read the component {}",
            request.component.display()
        )
    })?;
    let name = component_name(&request.component);
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: request.use_cache.then(|| state.component_cache()),
        ..Default::default()
    })?;
    let spec = ExtensionSpec {
        id: name.clone(),
        limits: request.limits,
        settings: request.settings,
        protected_settings: request.protected_settings,
        machine: MachineView::fixed(MachineInfo::local()),
        files: Vec::new(),
        // A development run's grants are the operator's own, given on its
        // command line: a literal local address there is meant.
        outbound: OutboundGrant {
            hosts: request.outbound,
            allow_local: true,
        },
        data_dir: state.dev_data(&name),
    };
    let extension = runtime.load(&bytes, spec)?;
    let mut activation = extension.activate();
    let call = request.call.name();
    let result = activation.call(request.call);
    Ok(RunLocalReport {
        extension: name,
        call,
        cache: extension.cache_outcome(),
        failure_logs: activation.last_failure_logs().to_vec(),
        result,
    })
}

/// The component's file stem, which names its development data directory.
fn component_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("component")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn calls_parse_and_mistakes_are_explained() -> Result<()> {
        assert_eq!(parse_call(&words("enable"))?, Call::Enable);
        assert_eq!(
            parse_call(&words("invoke greet A B"))?,
            Call::Invoke {
                command: "greet".into(),
                args: words("A B")
            }
        );
        assert_eq!(
            parse_call(&words("update 1.2.0"))?,
            Call::Update {
                from_version: "1.2.0".into()
            }
        );
        for (bad, why) in [
            ("", "no call"),
            ("enable now", "takes no arguments"),
            ("update", "exactly one"),
            ("invoke", "needs a command"),
            ("start", "not a call"),
        ] {
            let err = parse_call(&words(bad)).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        Ok(())
    }

    #[test]
    fn protected_settings_errors_do_not_echo_the_secret() {
        let err = parse_settings("{\"token\": s3cret", "protected settings")
            .expect_err("invalid JSON")
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("not valid JSON"));
        let err = parse_settings("[1]", "settings")
            .expect_err("not an object")
            .to_string();
        assert!(err.contains("must be a JSON object"));
    }
}
