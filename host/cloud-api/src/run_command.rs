//! Run commands: ARM's `machines/{machine}/runCommands/{name}` resource and
//! what the agent service carries between it and the machine.
//!
//! In Tether a run command names an installed extension's command
//! (`source.commandId = "Publisher/Name:command"`); its parameters become
//! the command's arguments. Tether runs no native scripts, so
//! `source.script` and `source.scriptUri` are refused.

use serde::{Deserialize, Serialize};

pub const RUN_COMMAND_TYPE: &str = "Microsoft.HybridCompute/machines/runCommands";

/// The most output kept of one run, as Azure's run commands keep: the
/// last 4 KiB.
pub const MAX_OUTPUT_BYTES: usize = 4096;

/// The longest a run command may ask to run; extensions' calls end sooner
/// (their manifest's call timeout, at most a minute).
pub const MAX_TIMEOUT_SECONDS: u32 = 3600;

/// The resource, as ARM returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineRunCommand {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default)]
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_data: Option<crate::arm::SystemData>,
    #[serde(default)]
    pub properties: RunCommandProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCommandProperties {
    #[serde(default)]
    pub source: RunCommandSource,
    #[serde(default)]
    pub parameters: Vec<RunCommandParameter>,
    /// Accepted on PUT, never returned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_parameters: Vec<RunCommandParameter>,
    #[serde(default)]
    pub async_execution: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<String>,
    /// Accepted on PUT only to be refused; never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_password: Option<String>,
    #[serde(default)]
    pub timeout_in_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_blob_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_blob_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_view: Option<RunCommandInstanceView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCommandSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCommandParameter {
    pub name: String,
    pub value: String,
}

impl RunCommandParameter {
    /// As the extension command receives it: `name=value`.
    pub fn argument(&self) -> String {
        format!("{}={}", self.name, self.value)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCommandInstanceView {
    /// `Unknown | Pending | Running | Failed | Succeeded | TimedOut | Canceled`.
    pub execution_state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub execution_message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

/// `Publisher/Name:command`, split; `None` when it is not that shape.
pub fn split_command_id(command_id: &str) -> Option<(&str, &str)> {
    let (extension, command) = command_id.rsplit_once(':')?;
    let valid = !command.is_empty()
        && !command.contains(char::is_whitespace)
        && extension.split('/').count() == 2
        && extension.split('/').all(|part| !part.is_empty());
    valid.then_some((extension, command))
}

/// Run commands waiting for a machine (`GET /agent/v1/runcommands`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRunCommands {
    pub commands: Vec<PendingRunCommand>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRunCommand {
    /// The resource's name.
    pub name: String,
    /// This run of it: a PUT of the same resource starts a new run.
    pub run_id: String,
    /// `Publisher/Name:command`.
    pub command_id: String,
    #[serde(default)]
    pub parameters: Vec<RunCommandParameter>,
    /// Only ever sent to the machine itself.
    #[serde(default)]
    pub protected_parameters: Vec<RunCommandParameter>,
    pub timeout_in_seconds: u32,
}

/// The machine's report of one run (`POST /agent/v1/runcommands/{name}/status`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCommandReport {
    pub run_id: String,
    /// `Running`, then `Succeeded | Failed | TimedOut`.
    pub execution_state: String,
    #[serde(default)]
    pub execution_message: String,
    /// `None` when the command did not run at all (refused on the machine).
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub error: String,
}

/// The last [`MAX_OUTPUT_BYTES`] of `text`, cut at a character boundary.
pub fn tail(text: &str) -> String {
    if text.len() <= MAX_OUTPUT_BYTES {
        return text.to_string();
    }
    let mut start = text.len() - MAX_OUTPUT_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_name_an_extension_and_a_command() {
        assert_eq!(
            split_command_id("Contoso.Ops/Diag:collect"),
            Some(("Contoso.Ops/Diag", "collect"))
        );
        for bad in [
            "collect",
            "Contoso/Diag",
            "Contoso/Diag:",
            "Diag:collect",
            "/Diag:x",
            "A/B/C:x",
            "A/B:two words",
        ] {
            assert_eq!(split_command_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn output_keeps_its_tail_whole() {
        let long = format!("{}é{}", "a".repeat(5000), "b".repeat(4095));
        let kept = tail(&long);
        assert!(kept.len() <= MAX_OUTPUT_BYTES);
        assert!(kept.ends_with('b'));
        assert_eq!(tail("short"), "short");
    }
}
