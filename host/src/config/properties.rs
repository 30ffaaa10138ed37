//! Every property: its meaning, format, default, example, and how a value
//! is checked and stored. `config info` prints this table.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The settings file's content. Unknown keys are refused: a typo is an
/// error, not a silently ignored setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub proxy: ProxySettings,
    pub extensions: ExtensionSettings,
    pub guestconfiguration: GuestConfiguration,
    pub incomingconnections: IncomingConnections,
    pub config: ModeSettings,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySettings {
    pub url: String,
    pub bypass: Vec<ProxyService>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtensionSettings {
    pub allowlist: Vec<String>,
    pub blocklist: Vec<String>,
    pub enabled: bool,
    pub agent: AgentSettings,
    pub outbound: OutboundSettings,
    pub files: FileSettings,
    pub schedules: ScheduleSettings,
    pub runcommands: RunCommandSettings,
}

/// How often extensions' `[[schedule]]` entries may run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSettings {
    /// The shortest interval a manifest may ask for, as `30s`, `5m`, `1h`.
    pub mininterval: String,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            mininterval: "1m".into(),
        }
    }
}

impl ScheduleSettings {
    /// The shortest interval allowed; a hand-edited value that does not
    /// parse allows no schedule shorter than a day.
    pub fn min_interval(&self) -> std::time::Duration {
        tether_package::parse_duration(&self.mininterval)
            .unwrap_or(std::time::Duration::from_secs(86_400))
    }
}

/// Whether the cloud's run commands reach this machine's extensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunCommandSettings {
    pub enabled: bool,
}

impl Default for RunCommandSettings {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// The directories extensions may be granted (manifests' `read_paths` and
/// `write_paths` must lie under one of these).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSettings {
    pub allowed: Vec<String>,
}

impl Default for ExtensionSettings {
    fn default() -> Self {
        Self {
            allowlist: Vec::new(),
            blocklist: Vec::new(),
            enabled: true,
            agent: AgentSettings::default(),
            outbound: OutboundSettings::default(),
            files: FileSettings::default(),
            schedules: ScheduleSettings::default(),
            runcommands: RunCommandSettings::default(),
        }
    }
}

/// What extensions' outbound HTTP may reach beyond what manifests declare.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSettings {
    /// Whether loopback, private and link-local addresses that a manifest
    /// names literally may be reached (never through a name).
    pub allowlocal: bool,
    /// The origins extensions may be granted: every origin a manifest
    /// declares must be covered by one of these.
    pub allowed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    pub cpulimit: u8,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self { cpulimit: 5 }
    }
}

/// azcmagent's guest-configuration settings, kept so its scripts carry
/// over; Tether has no guest-configuration agent (see [`Property::effect`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuestConfiguration {
    pub enabled: bool,
    pub agent: AgentSettings,
}

impl Default for GuestConfiguration {
    fn default() -> Self {
        Self {
            enabled: true,
            agent: AgentSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncomingConnections {
    pub enabled: bool,
    pub ports: Vec<u16>,
}

impl Default for IncomingConnections {
    fn default() -> Self {
        Self {
            enabled: true,
            ports: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModeSettings {
    pub mode: Mode,
}

/// `config.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Everything the agent does, subject to the other settings.
    #[default]
    Full,
    /// Observe only: extension lists are frozen, and only extensions of the
    /// `monitoring` category may be installed.
    Monitor,
}

/// A service whose traffic a proxy setting can route: Entra ID (AAD),
/// Resource Manager (ARM), and the agent service with the gallery (Arc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ProxyService {
    #[serde(rename = "AAD")]
    Aad,
    #[serde(rename = "ARM")]
    Arm,
    Arc,
}

impl ProxyService {
    pub const ALL: [ProxyService; 3] = [ProxyService::Aad, ProxyService::Arm, ProxyService::Arc];

    pub fn name(self) -> &'static str {
        match self {
            ProxyService::Aad => "AAD",
            ProxyService::Arm => "ARM",
            ProxyService::Arc => "Arc",
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("`{text}` is not a service; proxy.bypass takes service names: AAD, ARM, Arc (not URLs)"))
    }
}

/// How `config set` changes a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Replace,
    Add,
    Remove,
}

/// One property.
pub struct Property {
    pub key: &'static str,
    pub meaning: &'static str,
    pub format: &'static str,
    pub default: &'static str,
    pub example: &'static str,
    /// Whether `--add`/`--remove` apply.
    pub is_list: bool,
    /// Whether monitor mode freezes it.
    pub frozen_in_monitor_mode: bool,
    /// `None`: it acts as `meaning` says. Otherwise why it gates nothing:
    /// settings azcmagent has for parts Tether does not have, kept so
    /// operators' scripts that set them keep working.
    pub effect: Option<&'static str>,
    get: fn(&Settings) -> serde_json::Value,
    set: fn(&mut Settings, &str, Edit) -> Result<(), String>,
    clear: fn(&mut Settings),
}

impl Property {
    pub fn get(&self, settings: &Settings) -> serde_json::Value {
        (self.get)(settings)
    }

    /// The value as `config get` prints it: lists comma-separated.
    pub fn text(&self, settings: &Settings) -> String {
        match self.get(settings) {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }
    }

    pub fn set(&self, settings: &mut Settings, value: &str, edit: Edit) -> Result<(), String> {
        if edit != Edit::Replace && !self.is_list {
            return Err(format!(
                "{} is not a list; --add and --remove apply only to lists",
                self.key
            ));
        }
        (self.set)(settings, value, edit)
    }

    pub fn clear(&self, settings: &mut Settings) {
        (self.clear)(settings)
    }

    pub fn is_default(&self, settings: &Settings) -> bool {
        self.get(settings) == self.get(&Settings::default())
    }
}

/// The property named `key` (case-insensitive).
pub fn find(key: &str) -> Result<&'static Property, String> {
    PROPERTIES
        .iter()
        .find(|p| p.key.eq_ignore_ascii_case(key))
        .ok_or_else(|| {
            let keys: Vec<&str> = PROPERTIES.iter().map(|p| p.key).collect();
            format!(
                "`{key}` is not a setting; the settings are: {}",
                keys.join(", ")
            )
        })
}

fn items(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Applies an edit to a list, collapsing duplicates (by `same`), keeping order.
fn edit_list<T: Clone>(list: &mut Vec<T>, new: Vec<T>, edit: Edit, same: impl Fn(&T, &T) -> bool) {
    match edit {
        Edit::Replace => *list = Vec::new(),
        Edit::Remove => {
            list.retain(|x| !new.iter().any(|n| same(x, n)));
            return;
        }
        Edit::Add => {}
    }
    for item in new {
        if !list.iter().any(|x| same(x, &item)) {
            list.push(item);
        }
    }
}

/// A share of one CPU, in percent: 1 to 100.
fn parse_percent(key: &str, value: &str) -> Result<u8, String> {
    value
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| format!("{key} is a whole number from 1 to 100 (percent), not `{value}`"))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key} is true or false, not `{value}`")),
    }
}

/// `Publisher/Name`: each part letters, digits, '.', '-' or '_'.
fn parse_extension_id(key: &str, entry: &str) -> Result<String, String> {
    let valid_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 128
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    match entry.split_once('/') {
        Some((publisher, name)) if valid_part(publisher) && valid_part(name) => {
            Ok(entry.to_string())
        }
        _ => Err(format!(
            "`{entry}` is not a valid {key} entry: write Publisher/Name, for example Contoso.Monitoring/Inventory (letters, digits, '.', '-', '_'), and separate entries with commas"
        )),
    }
}

fn validate_proxy_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let url = url::Url::parse(value)
        .map_err(|e| format!("proxy.url `{value}` is not a URL ({e}); write http://host[:port]"))?;
    if url.scheme() == "https" {
        return Err("proxy.url must be http://host[:port]: Tether speaks to its proxy in plain HTTP (HTTPS traffic is tunnelled through it with CONNECT); https proxies are not supported".into());
    }
    if url.scheme() != "http" {
        return Err(format!(
            "proxy.url must be http://host[:port], not a {} URL",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("proxy.url must not contain credentials: Tether supports unauthenticated proxies only, and a secret in a setting would be readable by every local user".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("proxy.url needs a host: http://host[:port]".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("proxy.url is http://host[:port] only, without a path or query".into());
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!(
        "http://{}{port}",
        url.host_str().unwrap_or_default()
    ))
}

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

pub static PROPERTIES: &[Property] = &[
    Property {
        key: "proxy.url",
        meaning: "The HTTP proxy every outbound request to the cloud goes through, unless its service is in proxy.bypass. Empty: HTTPS_PROXY/https_proxy and NO_PROXY from the environment decide.",
        format: "http://host[:port], or empty; no https, no credentials",
        default: "\"\"",
        example: "tether config set proxy.url http://proxy.corp:3128",
        is_list: false,
        frozen_in_monitor_mode: false,
        effect: None,
        get: |s| to_json(&s.proxy.url),
        set: |s, v, _| {
            s.proxy.url = validate_proxy_url(v)?;
            Ok(())
        },
        clear: |s| s.proxy.url.clear(),
    },
    Property {
        key: "proxy.bypass",
        meaning: "Services whose traffic goes direct even when a proxy is set: AAD (sign-in), ARM (resource manager), Arc (agent service and extension gallery).",
        format: "comma-separated service names: AAD, ARM, Arc (any case)",
        default: "[]",
        example: "tether config set proxy.bypass AAD,ARM",
        is_list: true,
        frozen_in_monitor_mode: false,
        effect: None,
        get: |s| to_json(&s.proxy.bypass),
        set: |s, v, edit| {
            let new = items(v)
                .into_iter()
                .map(ProxyService::parse)
                .collect::<Result<Vec<_>, _>>()?;
            edit_list(&mut s.proxy.bypass, new, edit, |a, b| a == b);
            Ok(())
        },
        clear: |s| s.proxy.bypass.clear(),
    },
    Property {
        key: "extensions.allowlist",
        meaning: "When not empty, the only extensions that may be installed. The blocklist wins over it.",
        format: "comma-separated Publisher/Name, matched without regard to case",
        default: "[]",
        example: "tether config set extensions.allowlist Contoso.Monitoring/Inventory --add",
        is_list: true,
        frozen_in_monitor_mode: true,
        effect: None,
        get: |s| to_json(&s.extensions.allowlist),
        set: |s, v, edit| {
            let new = items(v)
                .into_iter()
                .map(|e| parse_extension_id("extensions.allowlist", e))
                .collect::<Result<Vec<_>, _>>()?;
            edit_list(&mut s.extensions.allowlist, new, edit, |a, b| {
                a.eq_ignore_ascii_case(b)
            });
            Ok(())
        },
        clear: |s| s.extensions.allowlist.clear(),
    },
    Property {
        key: "extensions.blocklist",
        meaning: "Extensions that may never be installed, whatever the allowlist or the cloud says.",
        format: "comma-separated Publisher/Name, matched without regard to case",
        default: "[]",
        example: "tether config set extensions.blocklist Contoso/Remote.Shell --add",
        is_list: true,
        frozen_in_monitor_mode: true,
        effect: None,
        get: |s| to_json(&s.extensions.blocklist),
        set: |s, v, edit| {
            let new = items(v)
                .into_iter()
                .map(|e| parse_extension_id("extensions.blocklist", e))
                .collect::<Result<Vec<_>, _>>()?;
            edit_list(&mut s.extensions.blocklist, new, edit, |a, b| {
                a.eq_ignore_ascii_case(b)
            });
            Ok(())
        },
        clear: |s| s.extensions.blocklist.clear(),
    },
    Property {
        key: "extensions.files.allowed",
        meaning: "Directories (or single files) under which extensions may be granted the read_paths and write_paths their manifests declare. Empty: none. Tether's state root, the identity key files, /proc (but its machine-wide files), /sys, /dev, /boot, /root and the system's secrets are never granted, whatever this says.",
        format: "comma-separated absolute directories",
        default: "[]",
        example: "tether config set extensions.files.allowed /var/log --add",
        is_list: true,
        frozen_in_monitor_mode: false,
        effect: None,
        get: |s| to_json(&s.extensions.files.allowed),
        set: |s, v, edit| {
            let new = items(v)
                .into_iter()
                .map(|p| {
                    let path = std::path::Path::new(p);
                    if path.is_absolute()
                        && !path
                            .components()
                            .any(|c| matches!(c, std::path::Component::ParentDir))
                    {
                        Ok(p.trim_end_matches('/').to_string())
                    } else {
                        Err(format!("`{p}` is not an absolute directory without `..`; extensions.files.allowed takes directories such as /var/log"))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            edit_list(&mut s.extensions.files.allowed, new, edit, |a, b| a == b);
            Ok(())
        },
        clear: |s| s.extensions.files.allowed.clear(),
    },
    Property {
        key: "extensions.schedules.mininterval",
        meaning: "The shortest interval an extension's [[schedule]] entry may ask for; a manifest asking for a shorter one is refused at install.",
        format: "a duration: 30s, 5m, 1h or 1d (10s at the least)",
        default: "1m",
        example: "tether config set extensions.schedules.mininterval 5m",
        is_list: false,
        frozen_in_monitor_mode: false,
        effect: None,
        get: |s| to_json(&s.extensions.schedules.mininterval),
        set: |s, v, _| {
            let every = tether_package::parse_duration(v)
                .map_err(|e| format!("extensions.schedules.mininterval: {e}"))?;
            if every < tether_package::MIN_SCHEDULE_INTERVAL {
                return Err("extensions.schedules.mininterval is 10s at the least".into());
            }
            s.extensions.schedules.mininterval = tether_package::format_duration(every);
            Ok(())
        },
        clear: |s| s.extensions.schedules = ScheduleSettings::default(),
    },
    Property {
        key: "extensions.runcommands.enabled",
        meaning: "Whether run commands created in the cloud (machines/{name}/runCommands) may run installed extensions' commands here. When false, each is answered as refused, naming this setting.",
        format: "true or false",
        default: "true",
        example: "tether config set extensions.runcommands.enabled false",
        is_list: false,
        frozen_in_monitor_mode: false,
        effect: None,
        get: |s| to_json(&s.extensions.runcommands.enabled),
        set: |s, v, _| {
            s.extensions.runcommands.enabled = parse_bool("extensions.runcommands.enabled", v)?;
            Ok(())
        },
        clear: |s| s.extensions.runcommands.enabled = true,
    },
    Property {
        key: "extensions.enabled",
        meaning: "Whether extensions may be installed and run at all. When false, installs are refused; removal is always allowed.",
        format: "true or false",
        default: "true",
        example: "tether config set extensions.enabled false",
        is_list: false,
        frozen_in_monitor_mode: false,
        effect: None,
        get: |s| to_json(&s.extensions.enabled),
        set: |s, v, _| {
            s.extensions.enabled = parse_bool("extensions.enabled", v)?;
            Ok(())
        },
        clear: |s| s.extensions.enabled = true,
    },
    Property {
        key: "extensions.agent.cpulimit",
        meaning: "The share of one CPU all extensions together may use, in percent, enforced over a time window.",
        format: "a whole number from 1 to 100",
        default: "5",
        example: "tether config set extensions.agent.cpulimit 20",
        is_list: false,
        frozen_in_monitor_mode: false,
        effect: None,
        get: |s| to_json(&s.extensions.agent.cpulimit),
        set: |s, v, _| {
            s.extensions.agent.cpulimit = parse_percent("extensions.agent.cpulimit", v)?;
            Ok(())
        },
        clear: |s| s.extensions.agent.cpulimit = 5,
    },
    Property {
        key: "extensions.outbound.allowed",
        meaning: "The origins extensions may be granted: every outbound origin a manifest declares must be covered by one of these (https://*.contoso.com covers https://api.contoso.com). Empty: none. Addresses on local networks need extensions.outbound.allowlocal besides.",
        format: "comma-separated scheme://host[:port], the host's leftmost label may be *",
        default: "[]",
        example: "tether config set extensions.outbound.allowed https://*.contoso.com --add",
        is_list: true,
        frozen_in_monitor_mode: false,
        effect: None,
        get: |s| to_json(&s.extensions.outbound.allowed),
        set: |s, v, edit| {
            let new = items(v)
                .into_iter()
                .map(|o| {
                    o.parse::<crate::runtime::HostPattern>()
                        .map(|_| o.to_string())
                        .map_err(|e| format!("extensions.outbound.allowed: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            edit_list(&mut s.extensions.outbound.allowed, new, edit, |a, b| {
                a.eq_ignore_ascii_case(b)
            });
            Ok(())
        },
        clear: |s| s.extensions.outbound.allowed.clear(),
    },
    Property {
        key: "extensions.outbound.allowlocal",
        meaning: "Whether extensions may reach loopback, private and link-local addresses (127.0.0.1, 10.x, 169.254.169.254…) that their manifests name literally, such as http://127.0.0.1:8080. A name that resolves to such an address is refused whatever this says.",
        format: "true or false",
        default: "false",
        example: "tether config set extensions.outbound.allowlocal true",
        is_list: false,
        frozen_in_monitor_mode: true,
        effect: None,
        get: |s| to_json(&s.extensions.outbound.allowlocal),
        set: |s, v, _| {
            s.extensions.outbound.allowlocal = parse_bool("extensions.outbound.allowlocal", v)?;
            Ok(())
        },
        clear: |s| s.extensions.outbound.allowlocal = false,
    },
    Property {
        key: "guestconfiguration.enabled",
        meaning: "Whether guest configuration (policy assignments evaluated on the machine) is allowed.",
        format: "true or false",
        default: "true",
        example: "tether config set guestconfiguration.enabled false",
        is_list: false,
        frozen_in_monitor_mode: false,
        effect: Some(
            "Tether has no guest-configuration agent: kept for compatibility with azcmagent (and reported to the cloud in agentConfiguration); it gates nothing.",
        ),
        get: |s| to_json(&s.guestconfiguration.enabled),
        set: |s, v, _| {
            s.guestconfiguration.enabled = parse_bool("guestconfiguration.enabled", v)?;
            Ok(())
        },
        clear: |s| s.guestconfiguration.enabled = true,
    },
    Property {
        key: "guestconfiguration.agent.cpulimit",
        meaning: "The share of one CPU azcmagent's guest-configuration agent may use, in percent.",
        format: "a whole number from 1 to 100",
        default: "5",
        example: "tether config set guestconfiguration.agent.cpulimit 10",
        is_list: false,
        frozen_in_monitor_mode: false,
        effect: Some(
            "Tether has no guest-configuration agent: kept for compatibility with azcmagent (and reported to the cloud in agentConfiguration); it gates nothing.",
        ),
        get: |s| to_json(&s.guestconfiguration.agent.cpulimit),
        set: |s, v, _| {
            s.guestconfiguration.agent.cpulimit =
                parse_percent("guestconfiguration.agent.cpulimit", v)?;
            Ok(())
        },
        clear: |s| s.guestconfiguration.agent.cpulimit = 5,
    },
    Property {
        key: "incomingconnections.enabled",
        meaning: "Whether connections into the machine through the cloud (remote management sessions) are allowed.",
        format: "true or false",
        default: "true",
        example: "tether config set incomingconnections.enabled false",
        is_list: false,
        frozen_in_monitor_mode: false,
        effect: Some(
            "Tether accepts no incoming connections through the cloud (no SSH or RDP relay): kept for compatibility with azcmagent; it gates nothing.",
        ),
        get: |s| to_json(&s.incomingconnections.enabled),
        set: |s, v, _| {
            s.incomingconnections.enabled = parse_bool("incomingconnections.enabled", v)?;
            Ok(())
        },
        clear: |s| s.incomingconnections.enabled = true,
    },
    Property {
        key: "incomingconnections.ports",
        meaning: "The local ports incoming connections may reach. Empty: none.",
        format: "comma-separated port numbers from 1 to 65535",
        default: "[]",
        example: "tether config set incomingconnections.ports 22,3389",
        is_list: true,
        frozen_in_monitor_mode: false,
        effect: Some(
            "Tether accepts no incoming connections through the cloud (no SSH or RDP relay): kept for compatibility with azcmagent; it gates nothing.",
        ),
        get: |s| to_json(&s.incomingconnections.ports),
        set: |s, v, edit| {
            let new = items(v)
                .into_iter()
                .map(|p| p.parse::<u16>().ok().filter(|n| *n >= 1).ok_or_else(|| format!("`{p}` is not a port; incomingconnections.ports takes numbers from 1 to 65535")))
                .collect::<Result<Vec<_>, _>>()?;
            edit_list(&mut s.incomingconnections.ports, new, edit, |a, b| a == b);
            Ok(())
        },
        clear: |s| s.incomingconnections.ports.clear(),
    },
    Property {
        key: "config.mode",
        meaning: "full: everything the agent does, subject to the other settings. monitor: observe only; the extension lists are frozen and only monitoring extensions may be installed.",
        format: "full or monitor",
        default: "full",
        example: "tether config set config.mode monitor",
        is_list: false,
        frozen_in_monitor_mode: false,
        effect: None,
        get: |s| to_json(&s.config.mode),
        set: |s, v, _| {
            s.config.mode = match v.trim().to_ascii_lowercase().as_str() {
                "full" => Mode::Full,
                "monitor" => Mode::Monitor,
                _ => return Err(format!("config.mode is full or monitor, not `{v}`")),
            };
            Ok(())
        },
        clear: |s| s.config.mode = Mode::Full,
    },
];

impl Settings {
    /// Whether `Publisher/Name` passes the allowlist and blocklist.
    pub fn policy_allows(&self, id: &str) -> Result<(), String> {
        let listed = |list: &[String]| list.iter().any(|e| e.eq_ignore_ascii_case(id));
        if listed(&self.extensions.blocklist) {
            return Err(format!("{id} is in extensions.blocklist"));
        }
        if !self.extensions.allowlist.is_empty() && !listed(&self.extensions.allowlist) {
            return Err(format!(
                "{id} is not in extensions.allowlist, which is not empty and so admits only what it lists"
            ));
        }
        Ok(())
    }

    /// The services bypassing the proxy, as a set.
    pub fn bypassed(&self) -> BTreeSet<ProxyService> {
        self.proxy.bypass.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &mut Settings, key: &str, value: &str, edit: Edit) -> Result<(), String> {
        find(key)?.set(s, value, edit)
    }

    #[test]
    fn lists_add_remove_and_collapse_duplicates() -> Result<(), String> {
        let mut s = Settings::default();
        set(
            &mut s,
            "extensions.allowlist",
            "A/b, C/d,a/B",
            Edit::Replace,
        )?;
        assert_eq!(s.extensions.allowlist, ["A/b", "C/d"]);
        set(&mut s, "extensions.allowlist", "E/f", Edit::Add)?;
        set(&mut s, "extensions.allowlist", "c/D", Edit::Remove)?;
        assert_eq!(s.extensions.allowlist, ["A/b", "E/f"]);
        set(&mut s, "proxy.bypass", "aad,ARM,arc,Aad", Edit::Replace)?;
        assert_eq!(
            s.proxy.bypass,
            [ProxyService::Aad, ProxyService::Arm, ProxyService::Arc]
        );
        assert!(set(&mut s, "config.mode", "monitor", Edit::Add).is_err());
        Ok(())
    }

    #[test]
    fn policy_blocklist_wins_and_allowlist_is_exclusive() {
        let mut s = Settings::default();
        assert!(s.policy_allows("Any/Thing").is_ok());
        s.extensions.allowlist = vec!["Contoso/Inv".into()];
        assert!(s.policy_allows("contoso/inv").is_ok());
        assert!(s.policy_allows("Other/X").is_err());
        s.extensions.blocklist = vec!["CONTOSO/INV".into()];
        assert!(
            s.policy_allows("Contoso/Inv")
                .expect_err("blocklisted")
                .contains("blocklist")
        );
    }

    #[test]
    fn proxy_urls_are_normalised_or_refused_with_the_reason() {
        assert_eq!(
            validate_proxy_url("http://Proxy.corp:3128/").as_deref(),
            Ok("http://proxy.corp:3128")
        );
        assert_eq!(validate_proxy_url("").as_deref(), Ok(""));
        for (bad, why) in [
            ("https://p:1", "https proxies are not supported"),
            ("http://u:pw@p:1", "credentials"),
            ("socks5://p:1", "not a socks5 URL"),
            ("http://p:1/path", "without a path"),
            ("p:1", "http://host"),
        ] {
            let err = validate_proxy_url(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }
}
