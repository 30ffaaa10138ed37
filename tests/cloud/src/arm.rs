//! Azure Resource Manager: `Microsoft.HybridCompute/machines` and their
//! extensions, with api-version checks, name validation, RBAC, paging and
//! long-running operations.
//!
//! ARM matches path segments like `resourceGroups` case-insensitively, so
//! the paths are parsed here rather than by the router.

use crate::Cloud;
use crate::auth::{self, Action};
use crate::errors::ArmError;
use crate::model::{ExtensionRecord, MachineRecord, Operation, OperationKind};
use crate::util;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tether_cloud_api::arm::{
    AsyncOperation, EXTENSION_TYPE, ErrorDetail, Identity, InstanceView, ListResult, MACHINE_TYPE,
    Machine, MachineExtension,
};
use tether_cloud_api::names::{
    RESOURCE_NAME_RULE, extension_id, is_valid_resource_name, machine_id,
};

/// Seconds without a heartbeat before a machine is Disconnected.
pub const DISCONNECTED_AFTER: u64 = 15 * 60;
/// Seconds without a heartbeat before a machine is Expired.
pub const EXPIRED_AFTER: u64 = 45 * 24 * 3600;

enum Route {
    SubscriptionMachines {
        sub: String,
    },
    GroupMachines {
        sub: String,
        rg: String,
    },
    Machine {
        sub: String,
        rg: String,
        name: String,
    },
    Extensions {
        sub: String,
        rg: String,
        machine: String,
    },
    Extension {
        sub: String,
        rg: String,
        machine: String,
        name: String,
    },
    RunCommands {
        sub: String,
        rg: String,
        machine: String,
    },
    RunCommand {
        sub: String,
        rg: String,
        machine: String,
        name: String,
    },
    Operation {
        sub: String,
        id: String,
        results: bool,
    },
}

fn parse(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let provider =
        |s: &[&str]| s.len() >= 2 && eq(s[0], "providers") && eq(s[1], "Microsoft.HybridCompute");
    if segs.len() < 2 || !eq(segs[0], "subscriptions") {
        return None;
    }
    let sub = segs[1].to_string();
    let rest = &segs[2..];
    if provider(rest) {
        return match &rest[2..] {
            [m] if eq(m, "machines") => Some(Route::SubscriptionMachines { sub }),
            [l, _, o, id]
                if eq(l, "locations")
                    && (eq(o, "operationStatus") || eq(o, "operationResults")) =>
            {
                Some(Route::Operation {
                    sub,
                    id: id.to_string(),
                    results: eq(o, "operationResults"),
                })
            }
            _ => None,
        };
    }
    if rest.len() < 4 || !eq(rest[0], "resourceGroups") || !provider(&rest[2..]) {
        return None;
    }
    let rg = rest[1].to_string();
    match &rest[4..] {
        [m] if eq(m, "machines") => Some(Route::GroupMachines { sub, rg }),
        [m, name] if eq(m, "machines") => Some(Route::Machine {
            sub,
            rg,
            name: name.to_string(),
        }),
        [m, machine, e] if eq(m, "machines") && eq(e, "extensions") => Some(Route::Extensions {
            sub,
            rg,
            machine: machine.to_string(),
        }),
        [m, machine, e, name] if eq(m, "machines") && eq(e, "extensions") => {
            Some(Route::Extension {
                sub,
                rg,
                machine: machine.to_string(),
                name: name.to_string(),
            })
        }
        [m, machine, r] if eq(m, "machines") && eq(r, "runCommands") => Some(Route::RunCommands {
            sub,
            rg,
            machine: machine.to_string(),
        }),
        [m, machine, r, name] if eq(m, "machines") && eq(r, "runCommands") => {
            Some(Route::RunCommand {
                sub,
                rg,
                machine: machine.to_string(),
                name: name.to_string(),
            })
        }
        _ => None,
    }
}

/// Every request under `/subscriptions/`.
pub async fn dispatch(
    State(cloud): State<Arc<Cloud>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let mut response = match handle(&cloud, &method, uri.path(), &query, &headers, &body) {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    arm_headers(&cloud, uri.path(), &headers, &mut response);
    response
}

/// What ARM adds to every answer: its request id, the caller's correlation
/// id (or a new one), and on 401 the `WWW-Authenticate` challenge naming
/// the authority of the subscription's tenant, which clients sign in to.
fn arm_headers(cloud: &Cloud, path: &str, request: &HeaderMap, response: &mut Response) {
    let correlation = request
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_string)
        .unwrap_or_else(crate::util::guid);
    let set = |response: &mut Response, name: &'static str, value: String| {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    };
    set(response, "x-ms-request-id", crate::util::guid());
    set(response, "x-ms-correlation-request-id", correlation);
    if response.status() == StatusCode::UNAUTHORIZED {
        let tenant = path
            .trim_matches('/')
            .split('/')
            .nth(1)
            .and_then(|sub| {
                cloud.read(|m| {
                    m.subscriptions
                        .get(&sub.to_ascii_lowercase())
                        .map(|s| s.tenant_id.clone())
                })
            })
            .unwrap_or_else(|| "common".into());
        set(
            response,
            "www-authenticate",
            format!(
                "Bearer authorization_uri=\"{}/{tenant}\", error=\"invalid_token\", error_description=\"The authentication failed because of missing or invalid credentials.\"",
                cloud.base_url
            ),
        );
    }
}

fn handle(
    cloud: &Cloud,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ArmError> {
    let Some(api_version) = query.get("api-version") else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    if !tether_cloud_api::arm::SUPPORTED_API_VERSIONS.contains(&api_version.as_str()) {
        return Err(ArmError::bad_request(
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{api_version}' is invalid. The supported versions are '{}'.",
                tether_cloud_api::arm::SUPPORTED_API_VERSIONS.join(", ")
            ),
        ));
    }
    expire_operations(cloud);
    let route = parse(path).ok_or_else(|| {
        ArmError::not_found(
            "InvalidResourceType",
            format!("No route for '{path}' in Microsoft.HybridCompute."),
        )
    })?;
    let paging = Paging {
        token: query.get("$skiptoken").map(String::as_str),
        path,
        api_version,
    };
    match (route, method.clone()) {
        (Route::SubscriptionMachines { sub }, Method::GET) => {
            subscription(cloud, &sub)?;
            auth::arm(
                cloud,
                headers,
                &format!("/subscriptions/{sub}"),
                Action::Read,
            )?;
            let prefix = format!("/subscriptions/{sub}/").to_ascii_lowercase();
            list_machines(cloud, &prefix, &paging)
        }
        (Route::GroupMachines { sub, rg }, Method::GET) => {
            let scope = group(cloud, &sub, &rg)?;
            auth::arm(cloud, headers, &scope, Action::Read)?;
            list_machines(cloud, &format!("{}/", scope.to_ascii_lowercase()), &paging)
        }
        (Route::Machine { sub, rg, name }, m) => {
            let scope = group(cloud, &sub, &rg)?;
            let id = machine_id(&sub, &rg, &name);
            match m {
                Method::GET => {
                    auth::arm(cloud, headers, &scope, Action::Read)?;
                    let machine = get_machine(cloud, &id)?;
                    Ok(Json(machine).into_response())
                }
                Method::PUT => {
                    auth::arm(cloud, headers, &scope, Action::WriteMachine)?;
                    put_machine(cloud, &sub, &rg, &name, body)
                }
                Method::PATCH => {
                    auth::arm(cloud, headers, &scope, Action::WriteMachine)?;
                    patch_machine(cloud, &id, body)
                }
                Method::DELETE => {
                    auth::arm(cloud, headers, &scope, Action::DeleteMachine)?;
                    Ok(delete_machine(cloud, &id, api_version))
                }
                _ => Err(method_not_allowed()),
            }
        }
        (Route::Extensions { sub, rg, machine }, Method::GET) => {
            let scope = group(cloud, &sub, &rg)?;
            auth::arm(cloud, headers, &scope, Action::Read)?;
            let mid = machine_id(&sub, &rg, &machine);
            get_machine(cloud, &mid)?;
            let items: Vec<MachineExtension> = cloud.read(|m| {
                m.extensions_of(&mid.to_ascii_lowercase())
                    .map(view_extension)
                    .collect()
            });
            Ok(Json(page(cloud, items, &paging)?).into_response())
        }
        (
            Route::Extension {
                sub,
                rg,
                machine,
                name,
            },
            m,
        ) => {
            let scope = group(cloud, &sub, &rg)?;
            let mid = machine_id(&sub, &rg, &machine);
            match m {
                Method::GET => {
                    auth::arm(cloud, headers, &scope, Action::Read)?;
                    let id = extension_id(&mid, &name).to_ascii_lowercase();
                    let ext = cloud
                        .read(|m| m.extensions.get(&id).map(view_extension))
                        .ok_or_else(|| not_found_extension(&name, &machine))?;
                    Ok(Json(ext).into_response())
                }
                Method::PUT | Method::PATCH => {
                    auth::arm(cloud, headers, &scope, Action::ManageExtensions)?;
                    let body: Value = parse_body(body)?;
                    put_extension(cloud, &mid, &name, body, m == Method::PATCH, api_version)
                }
                Method::DELETE => {
                    auth::arm(cloud, headers, &scope, Action::ManageExtensions)?;
                    delete_extension(cloud, &mid, &name, api_version)
                }
                _ => Err(method_not_allowed()),
            }
        }
        (Route::RunCommands { sub, rg, machine }, Method::GET) => {
            let scope = group(cloud, &sub, &rg)?;
            auth::arm(cloud, headers, &scope, Action::Read)?;
            let mid = machine_id(&sub, &rg, &machine);
            get_machine(cloud, &mid)?;
            crate::run_commands::list(cloud, &mid, &paging)
        }
        (
            Route::RunCommand {
                sub,
                rg,
                machine,
                name,
            },
            m,
        ) => {
            let scope = group(cloud, &sub, &rg)?;
            let mid = machine_id(&sub, &rg, &machine);
            match m {
                Method::GET => {
                    auth::arm(cloud, headers, &scope, Action::Read)?;
                    crate::run_commands::get(cloud, &mid, &name)
                }
                Method::PUT => {
                    auth::arm(cloud, headers, &scope, Action::RunCommands)?;
                    crate::run_commands::put(cloud, &mid, &name, body, api_version)
                }
                Method::DELETE => {
                    auth::arm(cloud, headers, &scope, Action::RunCommands)?;
                    crate::run_commands::delete(cloud, &mid, &name, api_version)
                }
                _ => Err(method_not_allowed()),
            }
        }
        (Route::Operation { sub, id, results }, Method::GET) => {
            subscription(cloud, &sub)?;
            auth::arm(
                cloud,
                headers,
                &format!("/subscriptions/{sub}"),
                Action::Read,
            )?;
            operation(cloud, &sub, &id, results, api_version)
        }
        _ => Err(method_not_allowed()),
    }
}

fn method_not_allowed() -> ArmError {
    ArmError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The HTTP method is not supported for this resource.",
    )
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ArmError> {
    serde_json::from_slice(body).map_err(|e| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}"),
        )
    })
}

fn subscription(cloud: &Cloud, sub: &str) -> Result<String, ArmError> {
    cloud
        .read(|m| {
            m.subscriptions
                .get(&sub.to_ascii_lowercase())
                .map(|s| s.tenant_id.clone())
        })
        .ok_or_else(|| {
            ArmError::not_found(
                "SubscriptionNotFound",
                format!("The subscription '{sub}' could not be found."),
            )
        })
}

/// The resource group's scope, if it exists.
fn group(cloud: &Cloud, sub: &str, rg: &str) -> Result<String, ArmError> {
    subscription(cloud, sub)?;
    let found = cloud.read(|m| {
        m.subscriptions
            .get(&sub.to_ascii_lowercase())
            .and_then(|s| {
                s.resource_groups
                    .get(&rg.to_ascii_lowercase())
                    .map(|g| g.name.clone())
            })
    });
    match found {
        Some(name) => Ok(format!("/subscriptions/{sub}/resourceGroups/{name}")),
        None => Err(ArmError::not_found(
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        )),
    }
}

pub(crate) struct Paging<'a> {
    /// Where the page before ended (opaque to clients, as ARM's is).
    token: Option<&'a str>,
    path: &'a str,
    api_version: &'a str,
}

impl Paging<'_> {
    fn next_link(&self, cloud: &Cloud, token: &str) -> String {
        format!(
            "{}{}?api-version={}&$skiptoken={token}",
            cloud.base_url, self.path, self.api_version
        )
    }

    /// The count of items the pages before skipped, for small lists
    /// paged by position.
    fn skipped(&self) -> Result<usize, ArmError> {
        self.token
            .map(|t| t.parse().map_err(|_| invalid_skip_token()))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// The key the page before ended at, for lists paged by key.
    fn after(&self) -> Result<Option<String>, ArmError> {
        self.token
            .map(|t| {
                tether_cloud_api::jwt::b64url_decode(t)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(invalid_skip_token)
            })
            .transpose()
    }
}

fn invalid_skip_token() -> ArmError {
    ArmError::bad_request(
        "InvalidSkipToken",
        "The $skiptoken is not one this list gave out; start again from the first page.",
    )
}

pub(crate) fn page<T: Clone>(
    cloud: &Cloud,
    items: Vec<T>,
    paging: &Paging,
) -> Result<ListResult<T>, ArmError> {
    let size = cloud.config.page_size.max(1);
    let skip = paging.skipped()?;
    let value: Vec<T> = items.iter().skip(skip).take(size).cloned().collect();
    let next = skip + value.len();
    let next_link = (next < items.len()).then(|| paging.next_link(cloud, &next.to_string()));
    Ok(ListResult { value, next_link })
}

/// Machines under `prefix`, a page at a time in key order: each page
/// starts where the last ended, so paging a large fleet costs a page's
/// worth per page.
fn list_machines(cloud: &Cloud, prefix: &str, paging: &Paging) -> Result<Response, ArmError> {
    let now = cloud.now();
    let size = cloud.config.page_size.max(1);
    let after = paging.after()?;
    let (value, next) = cloud.read(|m| {
        let (rows, more) = m.machines.page(prefix, after.as_deref(), size);
        let next = rows
            .last()
            .filter(|_| more)
            .map(|(key, _)| tether_cloud_api::jwt::b64url(key.as_bytes()));
        let value: Vec<Machine> = rows
            .into_iter()
            .map(|(_, r)| view_machine(r, now))
            .collect();
        (value, next)
    });
    let next_link = next.map(|token| paging.next_link(cloud, &token));
    Ok(Json(ListResult { value, next_link }).into_response())
}

/// `Connected`, `Disconnected` or `Expired`, from the last sign of life.
pub fn status_of(record: &MachineRecord, now: u64) -> &'static str {
    let last = record.last_heartbeat.unwrap_or(record.created);
    let quiet = now.saturating_sub(last);
    if quiet >= EXPIRED_AFTER {
        "Expired"
    } else if quiet >= DISCONNECTED_AFTER {
        "Disconnected"
    } else {
        "Connected"
    }
}

/// The machine as ARM returns it, its status computed for `now`.
pub fn view_machine(record: &MachineRecord, now: u64) -> Machine {
    let mut machine = record.resource.clone();
    let status = status_of(record, now);
    let last = record.last_heartbeat.unwrap_or(record.created);
    let changed = match status {
        "Connected" => record.status_since.max(last),
        "Disconnected" => last + DISCONNECTED_AFTER,
        _ => last + EXPIRED_AFTER,
    };
    machine.properties.status = Some(status.into());
    machine.properties.last_status_change = Some(util::rfc3339(changed));
    machine.system_data = Some(system_data(
        record.created,
        record.modified.unwrap_or(record.created),
    ));
    machine
}

/// `systemData` of a resource created and last changed at these times.
pub(crate) fn system_data(created: u64, modified: u64) -> tether_cloud_api::arm::SystemData {
    tether_cloud_api::arm::SystemData {
        created_by_type: Some("Application".into()),
        created_at: Some(util::rfc3339(created)),
        last_modified_by_type: Some("Application".into()),
        last_modified_at: Some(util::rfc3339(modified)),
    }
}

fn get_machine(cloud: &Cloud, id: &str) -> Result<Machine, ArmError> {
    let now = cloud.now();
    cloud
        .read(|m| m.machines.get(&id.to_ascii_lowercase()).map(|r| view_machine(r, now)))
        .ok_or_else(|| {
            let name = id.rsplit('/').next().unwrap_or(id);
            ArmError::not_found("ResourceNotFound", format!("The Resource 'Microsoft.HybridCompute/machines/{name}' under resource group was not found."))
        })
}

fn put_machine(
    cloud: &Cloud,
    sub: &str,
    rg: &str,
    name: &str,
    body: &[u8],
) -> Result<Response, ArmError> {
    if !is_valid_resource_name(name) {
        return Err(ArmError::bad_request(
            "InvalidResourceName",
            format!("The resource name '{name}' is invalid: {RESOURCE_NAME_RULE}."),
        ));
    }
    let mut incoming: Machine = parse_body(body)?;
    if incoming.location.trim().is_empty() {
        return Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    }
    let tenant = subscription(cloud, sub)?;
    let rg_name = group(cloud, sub, rg)?
        .rsplit('/')
        .next()
        .unwrap_or(rg)
        .to_string();
    let id = machine_id(sub, &rg_name, name);
    let key = id.to_ascii_lowercase();
    let now = cloud.now();
    if let Some(pk) = &incoming.properties.client_public_key
        && tether_cloud_api::jwt::parse_client_public_key(pk).is_none()
    {
        return Err(ArmError::bad_request(
            "InvalidClientPublicKey",
            "properties.clientPublicKey must be the base64 of an RSA public key (SubjectPublicKeyInfo or PKCS#1 DER, 2048 bits or more), as azcmagent registers, or of a 32-byte Ed25519 key.",
        ));
    }
    cloud.write(|m| {
        let existing = m.machines.get(&key).cloned();
        if let Some(existing) = &existing {
            let old = existing.resource.properties.vm_id.as_deref();
            let new = incoming.properties.vm_id.as_deref();
            if old.is_some() && new.is_some() && old != new {
                return Err(ArmError::new(
                    StatusCode::CONFLICT,
                    "ResourceNameInUse",
                    format!(
                        "The machine name '{name}' is already used by another machine (vmId {}) in resource group '{rg_name}'. Choose another name with --resource-name, or disconnect that machine first.",
                        old.unwrap_or_default()
                    ),
                ));
            }
        }
        let principal_id = existing
            .as_ref()
            .and_then(|e| e.resource.identity.as_ref().and_then(|i| i.principal_id.clone()))
            .unwrap_or_else(util::guid);
        incoming.id = id.clone();
        incoming.name = name.to_string();
        incoming.kind = MACHINE_TYPE.into();
        incoming.identity = Some(Identity {
            kind: "SystemAssigned".into(),
            principal_id: Some(principal_id),
            tenant_id: Some(tenant.clone()),
        });
        incoming.properties.provisioning_state = Some("Succeeded".into());
        incoming.properties.status = None;
        incoming.properties.last_status_change = None;
        let created = existing.is_none();
        let record = MachineRecord {
            resource: incoming,
            subscription: sub.to_ascii_lowercase(),
            created: existing.as_ref().map(|e| e.created).unwrap_or(now),
            modified: Some(now),
            // Connecting is a sign of life, and revives an expired machine.
            last_heartbeat: Some(now),
            status_since: now,
        };
        m.machines.insert(key.clone(), record);
        Ok(created)
    })
    .map(|_created| {
        // `Machines_CreateOrUpdate` answers 200 whether it created or
        // replaced (the specification lists no 201; the SDK refuses one).
        let machine = get_machine(cloud, &id).unwrap_or_default();
        (StatusCode::OK, Json(machine)).into_response()
    })
}

fn patch_machine(cloud: &Cloud, id: &str, body: &[u8]) -> Result<Response, ArmError> {
    let patch: Value = parse_body(body)?;
    let key = id.to_ascii_lowercase();
    let now = cloud.now();
    cloud.write(|m| {
        let record = m
            .machines
            .get_mut(&key)
            .ok_or_else(|| ArmError::not_found("ResourceNotFound", "The machine was not found."))?;
        record.modified = Some(now);
        if let Some(tags) = patch.get("tags").and_then(Value::as_object) {
            record.resource.tags = tags
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect();
        }
        if let Some(props) = patch.get("properties") {
            let p = &mut record.resource.properties;
            if let Some(v) = props.get("agentConfiguration") {
                p.agent_configuration = Some(v.clone());
            }
            if let Some(v) = props
                .get("privateLinkScopeResourceId")
                .and_then(Value::as_str)
            {
                p.private_link_scope_resource_id = Some(v.to_string());
            }
        }
        Ok(())
    })?;
    Ok(Json(get_machine(cloud, id)?).into_response())
}

fn delete_machine(cloud: &Cloud, id: &str, api_version: &str) -> Response {
    let key = id.to_ascii_lowercase();
    let now = cloud.now();
    let op = cloud.write(|m| {
        let record = m.machines.remove(&key)?;
        let prefix = format!("{key}/extensions/");
        m.extensions.retain(|k, _| !k.starts_with(&prefix));
        m.operations
            .retain(|_, op| !op.extension.starts_with(&prefix));
        let runs = format!("{key}/runcommands/");
        m.run_commands.retain(|k, _| !k.starts_with(&runs));
        m.operations
            .retain(|_, op| !op.extension.starts_with(&runs));
        let op = Operation {
            id: util::guid(),
            extension: key.clone(),
            kind: OperationKind::DeleteMachine,
            sequence: 0,
            status: "Succeeded".into(),
            start: now,
            end: Some(now),
            error: None,
            location: record.resource.location.clone(),
            subscription: record.subscription.clone(),
        };
        m.operations.insert(op.id.clone(), op.clone());
        Some(op)
    });
    match op {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(op) if tether_cloud_api::arm::machine_delete_is_long_running(api_version) => {
            accepted(cloud, &op, api_version, None)
        }
        Some(_) => StatusCode::OK.into_response(),
    }
}

fn not_found_extension(name: &str, machine: &str) -> ArmError {
    ArmError::not_found(
        "ResourceNotFound",
        format!("The extension '{name}' was not found on machine '{machine}'."),
    )
}

/// The extension as ARM returns it: no protected settings, and the
/// machine's last report as the instance view.
pub fn view_extension(record: &ExtensionRecord) -> MachineExtension {
    let mut ext = record.resource.clone();
    ext.properties.protected_settings = None;
    if let Some(report) = &record.last_report {
        let time = record.reported_at.map(util::rfc3339).unwrap_or_default();
        ext.properties.instance_view = Some(InstanceView {
            name: ext.name.clone(),
            kind: ext.properties.extension_type.clone(),
            type_handler_version: report.version.clone(),
            status: report.instance_view_status(&time),
        });
    }
    if let Some(created) = record.created {
        ext.system_data = Some(system_data(created, record.modified.unwrap_or(created)));
    }
    ext
}

fn async_headers(cloud: &Cloud, op: &Operation, api_version: &str) -> [(String, String); 3] {
    let base = format!(
        "{}/subscriptions/{}/providers/Microsoft.HybridCompute/locations/{}",
        cloud.base_url, op.subscription, op.location
    );
    [
        (
            "azure-asyncoperation".into(),
            format!("{base}/operationStatus/{}?api-version={api_version}", op.id),
        ),
        (
            "location".into(),
            format!(
                "{base}/operationResults/{}?api-version={api_version}",
                op.id
            ),
        ),
        ("retry-after".into(), "1".into()),
    ]
}

fn accepted(
    cloud: &Cloud,
    op: &Operation,
    api_version: &str,
    body: Option<MachineExtension>,
) -> Response {
    accepted_with(cloud, op, api_version, StatusCode::ACCEPTED, body)
}

/// An answer that starts a long-running operation: `status` with `body`,
/// and the headers that say where to follow it.
pub(crate) fn accepted_with<T: serde::Serialize>(
    cloud: &Cloud,
    op: &Operation,
    api_version: &str,
    status: StatusCode,
    body: Option<T>,
) -> Response {
    let mut response = match body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    };
    for (k, v) in async_headers(cloud, op, api_version) {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(k),
            HeaderValue::try_from(v),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Creates or updates an extension resource (ARM PUT/PATCH, and the admin
/// API's assignment), starting its long-running operation.
pub(crate) fn put_extension(
    cloud: &Cloud,
    machine_id: &str,
    name: &str,
    body: Value,
    patch: bool,
    api_version: &str,
) -> Result<Response, ArmError> {
    if !is_valid_resource_name(name) {
        return Err(ArmError::bad_request(
            "InvalidResourceName",
            format!("The resource name '{name}' is invalid: {RESOURCE_NAME_RULE}."),
        ));
    }
    let machine_key = machine_id.to_ascii_lowercase();
    let (location, sub) = cloud
        .read(|m| {
            m.machines
                .get(&machine_key)
                .map(|r| (r.resource.location.clone(), r.subscription.clone()))
        })
        .ok_or_else(|| {
            ArmError::not_found(
                "ParentResourceNotFound",
                format!(
                    "The machine '{machine_id}' was not found; connect it before adding extensions."
                ),
            )
        })?;
    let id = extension_id(machine_id, name);
    let key = id.to_ascii_lowercase();
    let props = body.get("properties").cloned().unwrap_or(Value::Null);
    let field = |name: &str| props.get(name).and_then(Value::as_str).map(str::to_string);
    let now = cloud.now();
    let op = cloud.write(|m| {
        let existing = m.extensions.get(&key).cloned();
        if patch && existing.is_none() {
            return Err(not_found_extension(name, machine_id));
        }
        let mut ext = existing
            .as_ref()
            .map(|e| e.resource.clone())
            .unwrap_or_default();
        let mut protected = existing.as_ref().and_then(|e| e.protected_settings.clone());
        if let Some(v) = field("publisher") {
            ext.properties.publisher = v;
        }
        if let Some(v) = field("type") {
            ext.properties.extension_type = v;
        }
        if let Some(v) = field("typeHandlerVersion") {
            ext.properties.type_handler_version = v;
        }
        if let Some(v) = props.get("settings") {
            ext.properties.settings = v.clone();
        }
        if let Some(v) = props.get("protectedSettings") {
            protected = Some(v.clone());
        }
        if let Some(v) = props.get("enableAutomaticUpgrade").and_then(Value::as_bool) {
            ext.properties.enable_automatic_upgrade = v;
        }
        for (what, value) in [
            ("publisher", &ext.properties.publisher),
            ("type", &ext.properties.extension_type),
            ("typeHandlerVersion", &ext.properties.type_handler_version),
        ] {
            if value.is_empty() {
                return Err(ArmError::bad_request(
                    "InvalidParameter",
                    format!("properties.{what} is required."),
                ));
            }
        }
        ext.id = id.clone();
        ext.name = name.to_string();
        ext.kind = EXTENSION_TYPE.into();
        ext.location = Some(location.clone());
        ext.properties.provisioning_state = Some(
            if existing.is_some() {
                "Updating"
            } else {
                "Creating"
            }
            .into(),
        );
        ext.properties.protected_settings = None;
        let sequence = m.next_sequence(&machine_key, now_ms());
        let op_id = util::guid();
        let mut operations = existing
            .as_ref()
            .map(|e| e.operations.clone())
            .unwrap_or_default();
        operations.push(op_id.clone());
        m.extensions.insert(
            key.clone(),
            ExtensionRecord {
                operations,
                resource: ext,
                machine: machine_key.clone(),
                protected_settings: protected,
                sequence,
                deleting: false,
                created: existing.as_ref().and_then(|e| e.created).or(Some(now)),
                reported_at: existing.as_ref().and_then(|e| e.reported_at),
                last_report: existing.and_then(|e| e.last_report),
                modified: Some(now),
            },
        );
        let op = Operation {
            id: op_id,
            extension: key.clone(),
            kind: OperationKind::Put,
            sequence,
            status: "InProgress".into(),
            start: now,
            end: None,
            error: None,
            location: location.clone(),
            subscription: sub.clone(),
        };
        m.operations.insert(op.id.clone(), op.clone());
        Ok(op)
    })?;
    let view = cloud.read(|m| m.extensions.get(&key).map(view_extension));
    Ok(accepted(cloud, &op, api_version, view))
}

pub(crate) fn delete_extension(
    cloud: &Cloud,
    machine_id: &str,
    name: &str,
    api_version: &str,
) -> Result<Response, ArmError> {
    let key = extension_id(machine_id, name).to_ascii_lowercase();
    let now = cloud.now();
    let op = cloud.write(|m| {
        let machine_connected = m
            .machines
            .get(&machine_id.to_ascii_lowercase())
            .is_some_and(|r| status_of(r, now) == "Connected");
        if !m.extensions.contains_key(&key) {
            return None;
        }
        let sequence = m.next_sequence(&machine_id.to_ascii_lowercase(), now_ms());
        let record = m.extensions.get_mut(&key)?;
        record.deleting = true;
        record.sequence = sequence;
        record.resource.properties.provisioning_state = Some("Deleting".into());
        // Nothing to wait for when the machine never installed it, has
        // already reported it removed, or is not there to answer.
        // An install that failed left nothing behind (its report names no
        // installed version), so no report of a removal will ever come.
        let installed = record
            .last_report
            .as_ref()
            .is_some_and(|r| r.state != "removed" && !(r.state == "error" && r.version.is_empty()));
        let immediate = !installed || !machine_connected;
        let location = record.resource.location.clone().unwrap_or_default();
        let sub = m
            .machines
            .get(&record.machine)
            .map(|r| r.subscription.clone())
            .unwrap_or_default();
        let op_id = util::guid();
        if immediate {
            m.extensions.remove(&key);
        } else {
            record.operations.push(op_id.clone());
        }
        let op = Operation {
            id: op_id,
            extension: key.clone(),
            kind: OperationKind::Delete,
            sequence,
            status: if immediate { "Succeeded" } else { "InProgress" }.into(),
            start: now,
            end: immediate.then_some(now),
            error: None,
            location,
            subscription: sub,
        };
        m.operations.insert(op.id.clone(), op.clone());
        Some(op)
    });
    match op {
        Some(op) => Ok(accepted(cloud, &op, api_version, None)),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

fn operation(
    cloud: &Cloud,
    sub: &str,
    id: &str,
    results: bool,
    api_version: &str,
) -> Result<Response, ArmError> {
    // An operation is found only under its own subscription: reading
    // another subscription's needs a role there, not here.
    let op = cloud
        .read(|m| m.operations.get(id).cloned())
        .filter(|op| op.subscription.eq_ignore_ascii_case(sub))
        .ok_or_else(|| {
            ArmError::not_found(
                "OperationNotFound",
                format!("The operation '{id}' was not found."),
            )
        })?;
    if results {
        // `Location` semantics: 202 while running, then the outcome.
        return Ok(match op.status.as_str() {
            "InProgress" => accepted(cloud, &op, api_version, None),
            "Succeeded" => StatusCode::NO_CONTENT.into_response(),
            _ => {
                let e = op.error.clone().unwrap_or_default();
                ArmError::bad_request(&e.code, e.message).into_response()
            }
        });
    }
    let body = AsyncOperation {
        id: format!(
            "/subscriptions/{}/providers/Microsoft.HybridCompute/locations/{}/operationStatus/{}",
            op.subscription, op.location, op.id
        ),
        name: op.id.clone(),
        status: op.status.clone(),
        start_time: Some(util::rfc3339(op.start)),
        end_time: op.end.map(util::rfc3339),
        error: op.error.clone(),
    };
    let mut response = Json(body).into_response();
    if op.status == "InProgress" {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    Ok(response)
}

/// How long an operation waits for the machine before it fails: every
/// long-running operation reaches a terminal state, even when the machine
/// never answers (offline for good, or it never had what was asked).
pub const OPERATION_TIMEOUT: u64 = 30 * 60;

/// How long a finished operation's outcome can still be asked for.
/// Without a bound every extension change of a fleet would be kept
/// forever.
pub const OPERATION_RETENTION: u64 = 24 * 3600;

/// Fails the operations that waited longer than [`OPERATION_TIMEOUT`]
/// and forgets those finished more than [`OPERATION_RETENTION`] ago
/// (tether-cloud's clock, which the admin API can move).
pub(crate) fn expire_operations(cloud: &Cloud) {
    let now = cloud.now();
    cloud.write_upkeep(|m| {
        m.operations
            .retain(|_, op| op.end.is_none_or(|end| now.saturating_sub(end) < OPERATION_RETENTION));
        let mut failed = Vec::new();
        let late = m.operations.matching_mut(|op| {
            op.status == "InProgress" && now.saturating_sub(op.start) > OPERATION_TIMEOUT
        });
        for op in late {
            op.status = "Failed".into();
            op.end = Some(now);
            op.error = Some(ErrorDetail {
                code: "OperationTimedOut".into(),
                message: format!(
                    "The machine did not report the outcome within {} minutes; check that it is connected (its status and last heartbeat), then retry the operation.",
                    OPERATION_TIMEOUT / 60
                ),
                target: None,
                details: Vec::new(),
            });
            failed.push(op.extension.clone());
        }
        for key in failed {
            if let Some(record) = m.extensions.get_mut(&key) {
                record.resource.properties.provisioning_state = Some("Failed".into());
            }
            if let Some(record) = m.run_commands.get_mut(&key) {
                record.resource.properties.provisioning_state = Some("Failed".into());
                if let Some(view) = record.resource.properties.instance_view.as_mut()
                    && matches!(view.execution_state.as_str(), "Pending" | "Running")
                {
                    view.execution_state = "TimedOut".into();
                    view.execution_message = "The machine did not report the run's outcome in time".into();
                }
            }
        }
    });
}

fn now_ms() -> u64 {
    u64::try_from(util::real_now_ms()).unwrap_or(u64::MAX)
}

/// Settles the operations (`pending`, the extension's operations in
/// progress) that a machine's report answers; returns those it leaves in
/// progress.
pub(crate) fn settle_operations(
    model: &mut crate::model::Model,
    pending: Vec<String>,
    sequence: u64,
    state: &str,
    message: &str,
    now: u64,
) -> Vec<String> {
    let mut still = Vec::new();
    for id in pending {
        let Some(op) = model.operations.get_mut(&id) else {
            continue;
        };
        if op.status != "InProgress" {
            continue;
        }
        if op.sequence > sequence {
            still.push(id);
            continue;
        }
        let outcome = match (op.kind, state) {
            (OperationKind::Put, "success" | "warning") => Some(None),
            (OperationKind::Put, "error") => Some(Some(ErrorDetail {
                code: "ExtensionOperationFailed".into(),
                message: message.to_string(),
                target: None,
                details: Vec::new(),
            })),
            (OperationKind::Delete, "removed") => Some(None),
            (OperationKind::Delete, "error") => Some(Some(ErrorDetail {
                code: "ExtensionRemovalFailed".into(),
                message: message.to_string(),
                target: None,
                details: Vec::new(),
            })),
            _ => None,
        };
        match outcome {
            Some(error) => op.finish(error, now),
            None => still.push(id),
        }
    }
    still
}
