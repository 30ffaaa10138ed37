//! One run of a cloud run command on this machine: the command id names
//! an installed extension's command, the parameters become its arguments
//! (`name=value`, public ones first), and the run happens only when the
//! operator lets run commands in (`extensions.runcommands.enabled`) and the
//! extension is installed, enabled and allowed. Arguments are never logged:
//! protected parameters are among them.

use super::manager::Manager;
use crate::config::Settings;
use crate::runtime::GuestErrorKind;
use std::time::Duration;
use tether_cloud_api::run_command::{PendingRunCommand, RunCommandReport, split_command_id, tail};

/// The report that says the run started.
pub fn started(pending: &PendingRunCommand) -> RunCommandReport {
    RunCommandReport {
        run_id: pending.run_id.clone(),
        execution_state: "Running".into(),
        execution_message: format!("Running {}", pending.command_id),
        ..Default::default()
    }
}

/// A run that never started: no exit code, the reason as the error.
fn refused(pending: &PendingRunCommand, why: String) -> RunCommandReport {
    RunCommandReport {
        run_id: pending.run_id.clone(),
        execution_state: "Failed".into(),
        execution_message: "The run command was refused on the machine".into(),
        exit_code: None,
        output: String::new(),
        error: tail(&why),
    }
}

/// Runs it and says how it went.
pub fn run(
    manager: &Manager,
    settings: &Settings,
    pending: &PendingRunCommand,
) -> RunCommandReport {
    if !settings.extensions.runcommands.enabled {
        return refused(
            pending,
            "run commands are turned off on this machine (extensions.runcommands.enabled is false); its operator turns them on with `tether config set extensions.runcommands.enabled true`".into(),
        );
    }
    if !settings.extensions.enabled {
        return refused(
            pending,
            "extensions are disabled on this machine (extensions.enabled is false)".into(),
        );
    }
    let Some((extension, command)) = split_command_id(&pending.command_id) else {
        return refused(
            pending,
            format!("`{}` is not 'Publisher/Name:command'", pending.command_id),
        );
    };
    let args: Vec<String> = pending
        .parameters
        .iter()
        .chain(&pending.protected_parameters)
        .map(|p| p.argument())
        .collect();
    let max = (pending.timeout_in_seconds > 0)
        .then(|| Duration::from_secs(pending.timeout_in_seconds.into()));
    let result = manager.invoke_within(extension, command, &args, max);
    let report = match result {
        Ok(outcome) => RunCommandReport {
            run_id: pending.run_id.clone(),
            execution_state: "Succeeded".into(),
            execution_message: format!("{} completed", pending.command_id),
            exit_code: Some(0),
            output: tail(outcome.output.as_deref().unwrap_or_default()),
            error: String::new(),
        },
        Err(e) => match e.downcast_ref::<crate::runtime::GuestError>() {
            Some(guest) => RunCommandReport {
                run_id: pending.run_id.clone(),
                execution_state: if matches!(guest.kind, GuestErrorKind::Timeout { .. }) {
                    "TimedOut"
                } else {
                    "Failed"
                }
                .into(),
                execution_message: format!("{} failed", pending.command_id),
                exit_code: Some(1),
                output: String::new(),
                error: tail(&guest.to_string()),
            },
            // Not installed, disabled, no longer allowed: it never ran.
            None => refused(pending, format!("{e:#}")),
        },
    };
    tracing::info!(
        "run command {}: {} → {}",
        pending.name,
        pending.command_id,
        report.execution_state
    );
    report
}
