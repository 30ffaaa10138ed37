//! The admin API (`/admin/…`, `Authorization: Bearer <admin key>`): what a
//! cloud's own administrators would do in its portal, and what tests need
//! to steer it: tenants, subscriptions, groups, users, service principals,
//! role assignments, pending sign-ins, the clock, extension assignments,
//! the gallery, faults and the request log.

use crate::Cloud;
use crate::auth;
use crate::errors::ArmError;
use crate::faults::Fault;
use crate::identity::settle_device_code;
use crate::model::{
    Certificate, ResourceGroup, Role, RoleAssignment, ServicePrincipal, Subscription, Tenant, User,
};
use crate::util;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub fn router(cloud: Arc<Cloud>) -> Router<Arc<Cloud>> {
    Router::new()
        .route("/bootstrap", post(bootstrap))
        .route("/tenants", post(create_tenant))
        .route("/subscriptions", post(create_subscription))
        .route("/subscriptions/{sub}/resourceGroups", post(create_group))
        .route("/users", post(create_user))
        .route("/servicePrincipals", post(create_principal))
        .route("/roleAssignments", post(assign_role))
        .route("/deviceCodes/{code}/approve", post(approve_device_code))
        .route("/deviceCodes/{code}/deny", post(deny_device_code))
        .route("/signIns/{id}/approve", post(approve_sign_in))
        .route("/signIns/{id}/deny", post(deny_sign_in))
        .route("/clock/advance", post(advance_clock))
        .route("/clock", get(clock))
        .route("/extensions", post(assign_extension))
        .route(
            "/gallery/{publisher}/{name}/{version}",
            // A package with an interpreter inside (Python, JavaScript)
            // passes axum's 2 MB default; the gallery's own cap applies.
            put(crate::gallery::upload).layer(axum::extract::DefaultBodyLimit::max(
                crate::gallery::MAX_PACKAGE_BYTES + 1,
            )),
        )
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/requests", get(requests).delete(clear_requests))
        .route("/machines", get(machines))
        .route("/fleet", get(fleet))
        .route("/machines/{*id}", delete(delete_machine))
        .layer(axum::middleware::from_fn_with_state(cloud, require_admin))
}

async fn require_admin(State(cloud): State<Arc<Cloud>>, request: Request, next: Next) -> Response {
    match auth::admin(&cloud, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

type Result<T> = std::result::Result<T, ArmError>;

fn created(value: Value) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

fn bad(message: impl Into<String>) -> ArmError {
    ArmError::bad_request("InvalidAdminRequest", message)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TenantBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

fn new_tenant(cloud: &Cloud, body: TenantBody) -> Tenant {
    let tenant = Tenant {
        id: body.id.unwrap_or_else(util::guid),
        name: body.name.unwrap_or_else(|| "Tether".into()),
    };
    cloud.write(|m| m.tenants.insert(tenant.id.clone(), tenant.clone()));
    tenant
}

async fn create_tenant(State(cloud): State<Arc<Cloud>>, Json(body): Json<TenantBody>) -> Response {
    created(json!(new_tenant(&cloud, body)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubscriptionBody {
    tenant_id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

fn new_subscription(cloud: &Cloud, body: SubscriptionBody) -> Result<Subscription> {
    if !cloud.read(|m| m.tenants.contains_key(&body.tenant_id)) {
        return Err(bad(format!("no tenant {}", body.tenant_id)));
    }
    let sub = Subscription {
        id: body.id.unwrap_or_else(util::guid).to_ascii_lowercase(),
        tenant_id: body.tenant_id,
        display_name: body
            .display_name
            .unwrap_or_else(|| "Tether subscription".into()),
        resource_groups: Default::default(),
    };
    cloud.write(|m| m.subscriptions.insert(sub.id.clone(), sub.clone()));
    Ok(sub)
}

async fn create_subscription(
    State(cloud): State<Arc<Cloud>>,
    Json(body): Json<SubscriptionBody>,
) -> Result<Response> {
    Ok(created(json!(new_subscription(&cloud, body)?)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupBody {
    name: String,
    location: String,
}

fn new_group(cloud: &Cloud, sub: &str, body: GroupBody) -> Result<ResourceGroup> {
    if !tether_cloud_api::names::is_valid_resource_name(&body.name) {
        return Err(bad(format!("invalid resource group name {:?}", body.name)));
    }
    let group = ResourceGroup {
        name: body.name,
        location: body.location,
    };
    cloud
        .write(|m| {
            let s = m.subscriptions.get_mut(&sub.to_ascii_lowercase())?;
            s.resource_groups
                .insert(group.name.to_ascii_lowercase(), group.clone());
            Some(())
        })
        .ok_or_else(|| bad(format!("no subscription {sub}")))?;
    Ok(group)
}

async fn create_group(
    State(cloud): State<Arc<Cloud>>,
    Path(sub): Path<String>,
    Json(body): Json<GroupBody>,
) -> Result<Response> {
    Ok(created(json!(new_group(&cloud, &sub, body)?)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserBody {
    tenant_id: String,
    username: String,
    password: String,
}

fn new_user(cloud: &Cloud, body: UserBody) -> Result<User> {
    if !cloud.read(|m| m.tenants.contains_key(&body.tenant_id)) {
        return Err(bad(format!("no tenant {}", body.tenant_id)));
    }
    let salt = util::secret(12);
    let user = User {
        object_id: util::guid(),
        tenant_id: body.tenant_id,
        username: body.username,
        password_hash: util::sha256_hex(format!("{salt}{}", body.password).as_bytes()),
        password_salt: salt,
    };
    cloud.write(|m| m.users.insert(user.object_id.clone(), user.clone()));
    Ok(user)
}

async fn create_user(
    State(cloud): State<Arc<Cloud>>,
    Json(body): Json<UserBody>,
) -> Result<Response> {
    let user = new_user(&cloud, body)?;
    Ok(created(
        json!({"objectId": user.object_id, "tenantId": user.tenant_id, "username": user.username}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PrincipalBody {
    tenant_id: String,
    #[serde(default)]
    display_name: Option<String>,
    /// Create a client secret (printed once).
    #[serde(default)]
    secret: bool,
    /// `"generate"` for a new RSA certificate and key (printed once), or a
    /// PEM certificate (RSA; Ed25519 besides) to register.
    #[serde(default)]
    certificate: Option<String>,
}

fn new_principal(cloud: &Cloud, body: PrincipalBody) -> Result<Value> {
    if !cloud.read(|m| m.tenants.contains_key(&body.tenant_id)) {
        return Err(bad(format!("no tenant {}", body.tenant_id)));
    }
    let mut out = json!({});
    let mut principal = ServicePrincipal {
        client_id: util::guid(),
        object_id: util::guid(),
        tenant_id: body.tenant_id.clone(),
        display_name: body
            .display_name
            .unwrap_or_else(|| "tether-onboarding".into()),
        secret_hashes: Vec::new(),
        certificates: Vec::new(),
    };
    if body.secret {
        let secret = util::secret(30);
        principal
            .secret_hashes
            .push(util::sha256_hex(secret.as_bytes()));
        out["secret"] = json!(secret);
    }
    match body.certificate.as_deref() {
        None => {}
        Some("generate") => {
            let (cert, pem_bundle) = generate_certificate(&principal.display_name)?;
            principal.certificates.push(cert.clone());
            out["certificatePem"] = json!(pem_bundle);
            out["thumbprint"] = json!(cert.thumbprint);
        }
        Some(pem) => {
            let cert = register_certificate(pem)?;
            out["thumbprint"] = json!(cert.thumbprint);
            principal.certificates.push(cert);
        }
    }
    out["clientId"] = json!(principal.client_id);
    out["objectId"] = json!(principal.object_id);
    out["tenantId"] = json!(principal.tenant_id);
    out["displayName"] = json!(principal.display_name);
    cloud.write(|m| m.principals.insert(principal.client_id.clone(), principal));
    Ok(out)
}

/// A self-signed RSA certificate and its key (PKCS#8 v1), as one PEM
/// bundle: the form `tether connect --service-principal-cert` and the
/// Azure SDKs' certificate credentials read.
fn generate_certificate(name: &str) -> Result<(Certificate, String)> {
    let fail = |e: anyhow::Error| {
        ArmError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CertificateGenerationFailed",
            format!("{e:#}"),
        )
    };
    let pkcs8 = crate::keys::generate_pkcs8().map_err(fail)?;
    let (der, cert_pem) = crate::keys::self_signed(&pkcs8, name).map_err(fail)?;
    let record = certificate_record(&der)?;
    Ok((
        record,
        format!(
            "{cert_pem}{}",
            tether_cloud_api::pem::encode("PRIVATE KEY", &pkcs8)
        ),
    ))
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What is kept of a certificate: its thumbprints and its public key.
/// RSA keys, as Entra takes; Ed25519 besides (Tether's own extra); any
/// other is refused with the reason.
fn certificate_record(der: &[u8]) -> Result<Certificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
    let spki = cert.public_key();
    let public_key = match spki.algorithm.algorithm.to_id_string().as_str() {
        // rsaEncryption
        "1.2.840.113549.1.1.1" => tether_cloud_api::jwt::RsaPublicKey::from_der(spki.raw)
            .map(|k| base64_std(&k.0))
            .ok_or_else(|| bad("the certificate's RSA key is shorter than 2048 bits or damaged"))?,
        // Ed25519 (RFC 8410): a 32-byte key.
        "1.3.101.112" if spki.subject_public_key.data.len() == 32 => {
            base64_std(&spki.subject_public_key.data)
        }
        other => {
            return Err(bad(format!(
                "the certificate's key ({other}) is not RSA: Entra, and tether-cloud, take RSA certificates (2048 bits or more); EC keys are refused"
            )));
        }
    };
    Ok(Certificate {
        thumbprint: tether_cloud_api::jwt::thumbprint(der),
        thumbprint_s256: tether_cloud_api::jwt::thumbprint_s256(der),
        public_key,
    })
}

fn register_certificate(pem: &str) -> Result<Certificate> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
    certificate_record(&parsed.contents)
}

async fn create_principal(
    State(cloud): State<Arc<Cloud>>,
    Json(body): Json<PrincipalBody>,
) -> Result<Response> {
    Ok(created(new_principal(&cloud, body)?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleBody {
    /// An object id, or a service principal's client id.
    principal_id: String,
    role: String,
    scope: String,
}

fn new_assignment(cloud: &Cloud, body: RoleBody) -> Result<RoleAssignment> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        bad(format!(
            "unknown role {:?}: use onboarding, administrator or reader",
            body.role
        ))
    })?;
    let object_id = cloud.read(|m| {
        m.principals
            .get(&body.principal_id)
            .map(|p| p.object_id.clone())
            .or_else(|| {
                m.principals
                    .values()
                    .find(|p| p.object_id == body.principal_id)
                    .map(|p| p.object_id.clone())
            })
            .or_else(|| m.users.get(&body.principal_id).map(|u| u.object_id.clone()))
            .or_else(|| {
                m.users
                    .values()
                    .find(|u| u.username.eq_ignore_ascii_case(&body.principal_id))
                    .map(|u| u.object_id.clone())
            })
            // A connected machine's managed identity, by its principal id.
            .or_else(|| {
                m.machines
                    .values()
                    .filter_map(|rec| rec.resource.identity.as_ref()?.principal_id.clone())
                    .find(|id| *id == body.principal_id)
            })
    });
    let object_id = object_id.ok_or_else(|| {
        bad(format!(
            "no user, service principal or machine identity {}",
            body.principal_id
        ))
    })?;
    if !body
        .scope
        .to_ascii_lowercase()
        .starts_with("/subscriptions/")
    {
        return Err(bad(
            "scope must be /subscriptions/{id} or /subscriptions/{id}/resourceGroups/{name}",
        ));
    }
    let assignment = RoleAssignment {
        principal_id: object_id,
        role,
        scope: body.scope.trim_end_matches('/').to_string(),
    };
    cloud.write(|m| {
        m.role_assignments
            .insert(assignment.key(), assignment.clone())
    });
    Ok(assignment)
}

async fn assign_role(
    State(cloud): State<Arc<Cloud>>,
    Json(body): Json<RoleBody>,
) -> Result<Response> {
    Ok(created(json!(new_assignment(&cloud, body)?)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApproveBody {
    username: String,
}

/// The object id of the user named `username`.
fn user_object_id(cloud: &Cloud, username: &str) -> Result<String> {
    cloud
        .read(|m| {
            m.users
                .values()
                .find(|u| u.username.eq_ignore_ascii_case(username))
                .map(|u| u.object_id.clone())
        })
        .ok_or_else(|| bad(format!("no user {username}")))
}

async fn approve_device_code(
    State(cloud): State<Arc<Cloud>>,
    Path(code): Path<String>,
    Json(body): Json<ApproveBody>,
) -> Result<Response> {
    let object_id = user_object_id(&cloud, &body.username)?;
    if settle_device_code(&cloud, &code, Some(object_id)) {
        Ok(Json(json!({"approved": code})).into_response())
    } else {
        Err(ArmError::not_found(
            "DeviceCodeNotFound",
            format!("no pending device code {code}"),
        ))
    }
}

async fn deny_device_code(
    State(cloud): State<Arc<Cloud>>,
    Path(code): Path<String>,
) -> Result<Response> {
    if settle_device_code(&cloud, &code, None) {
        Ok(Json(json!({"denied": code})).into_response())
    } else {
        Err(ArmError::not_found(
            "DeviceCodeNotFound",
            format!("no pending device code {code}"),
        ))
    }
}

async fn approve_sign_in(
    State(cloud): State<Arc<Cloud>>,
    Path(id): Path<String>,
    Json(body): Json<ApproveBody>,
) -> Result<Response> {
    let object_id = user_object_id(&cloud, &body.username)?;
    if crate::identity::settle_sign_in(&cloud, &id, Some(object_id)) {
        Ok(Json(json!({"approved": id})).into_response())
    } else {
        Err(ArmError::not_found(
            "SignInNotFound",
            format!("no pending browser sign-in {id}"),
        ))
    }
}

async fn deny_sign_in(State(cloud): State<Arc<Cloud>>, Path(id): Path<String>) -> Result<Response> {
    if crate::identity::settle_sign_in(&cloud, &id, None) {
        Ok(Json(json!({"denied": id})).into_response())
    } else {
        Err(ArmError::not_found(
            "SignInNotFound",
            format!("no pending browser sign-in {id}"),
        ))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdvanceBody {
    seconds: u64,
}

async fn advance_clock(State(cloud): State<Arc<Cloud>>, Json(body): Json<AdvanceBody>) -> Response {
    cloud.write(|m| m.meta.clock_offset += body.seconds);
    clock(State(cloud)).await
}

async fn clock(State(cloud): State<Arc<Cloud>>) -> Response {
    let now = cloud.now();
    Json(json!({"now": now, "time": util::rfc3339(now), "offsetSeconds": cloud.read(|m| m.meta.clock_offset)})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssignBody {
    machine_id: String,
    name: String,
    publisher: String,
    #[serde(rename = "type")]
    extension_type: String,
    version: String,
    #[serde(default)]
    settings: Value,
    #[serde(default)]
    protected_settings: Option<Value>,
    #[serde(default)]
    enable_automatic_upgrade: bool,
}

async fn assign_extension(
    State(cloud): State<Arc<Cloud>>,
    Json(body): Json<AssignBody>,
) -> Result<Response> {
    let mut props = json!({
        "publisher": body.publisher,
        "type": body.extension_type,
        "typeHandlerVersion": body.version,
        "settings": body.settings,
        "enableAutomaticUpgrade": body.enable_automatic_upgrade,
    });
    if let Some(p) = body.protected_settings {
        props["protectedSettings"] = p;
    }
    crate::arm::put_extension(
        &cloud,
        &body.machine_id,
        &body.name,
        json!({"properties": props}),
        false,
        tether_cloud_api::arm::API_VERSION,
    )
}

async fn add_fault(State(cloud): State<Arc<Cloud>>, Json(fault): Json<Fault>) -> Result<Response> {
    if !fault.path.starts_with('/') {
        return Err(bad(
            "a fault's path is a path prefix starting with '/', for example /subscriptions or /agent/v1/heartbeat",
        ));
    }
    if fault.status.is_none() && fault.latency_ms.is_none() && !fault.reset {
        return Err(bad("a fault needs a status, a latencyMs, or reset"));
    }
    if fault.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return Err(bad("probability is between 0 and 1"));
    }
    let id = cloud.faults.add(fault);
    Ok(created(json!({"id": id})))
}

async fn list_faults(State(cloud): State<Arc<Cloud>>) -> Response {
    Json(cloud.faults.list()).into_response()
}

async fn clear_faults(State(cloud): State<Arc<Cloud>>) -> Response {
    cloud.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn requests(
    State(cloud): State<Arc<Cloud>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let since = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    Json(cloud.faults.requests(since)).into_response()
}

async fn clear_requests(State(cloud): State<Arc<Cloud>>) -> Response {
    cloud.faults.clear_requests();
    StatusCode::NO_CONTENT.into_response()
}

async fn fleet(State(cloud): State<Arc<Cloud>>) -> Response {
    Json(crate::fleet::summary(&cloud)).into_response()
}

async fn machines(State(cloud): State<Arc<Cloud>>) -> Response {
    let now = cloud.now();
    let list: Vec<Value> = cloud.read(|m| {
        m.machines
            .values()
            .map(|r| {
                let key = r.resource.id.to_ascii_lowercase();
                let exts: Vec<Value> = m
                    .extensions_of(&key)
                    .map(|e| json!(crate::arm::view_extension(e)))
                    .collect();
                let metrics = m.metrics.get(&key);
                // Each extension's latest document, by its resource name.
                let documents: serde_json::Map<String, Value> = m
                    .extensions_of(&key)
                    .filter_map(|e| Some((e.resource.name.clone(), e.last_report.as_ref()?.document.clone()?)))
                    .collect();
                json!({"machine": crate::arm::view_machine(r, now), "lastHeartbeat": r.last_heartbeat, "extensions": exts, "metrics": metrics, "documents": documents})
            })
            .collect()
    });
    Json(list).into_response()
}

async fn delete_machine(State(cloud): State<Arc<Cloud>>, Path(id): Path<String>) -> Response {
    let key = format!("/{}", id.trim_start_matches('/')).to_ascii_lowercase();
    let existed = cloud.write(|m| m.machines.remove(&key).is_some());
    if existed {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    }
    .into_response()
}

/// Creates a ready-to-use world: a tenant, a subscription, a resource group,
/// an administrator service principal with a secret, an onboarding one,
/// and a user, all with role assignments on the subscription.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapBody {
    #[serde(default)]
    pub resource_group: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
}

async fn bootstrap(
    State(cloud): State<Arc<Cloud>>,
    body: Option<Json<BootstrapBody>>,
) -> Result<Response> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let tenant = new_tenant(
        &cloud,
        TenantBody {
            name: Some("Demo".into()),
            id: None,
        },
    );
    let sub = new_subscription(
        &cloud,
        SubscriptionBody {
            tenant_id: tenant.id.clone(),
            display_name: Some("Demo".into()),
            id: None,
        },
    )?;
    let location = body.location.unwrap_or_else(|| "local".into());
    let rg = new_group(
        &cloud,
        &sub.id,
        GroupBody {
            name: body.resource_group.unwrap_or_else(|| "demo".into()),
            location: location.clone(),
        },
    )?;
    let scope = format!("/subscriptions/{}", sub.id);
    let admin = new_principal(
        &cloud,
        PrincipalBody {
            tenant_id: tenant.id.clone(),
            display_name: Some("tether-admin".into()),
            secret: true,
            certificate: None,
        },
    )?;
    new_assignment(
        &cloud,
        RoleBody {
            principal_id: admin["clientId"].as_str().unwrap_or_default().into(),
            role: "administrator".into(),
            scope: scope.clone(),
        },
    )?;
    let onboarding = new_principal(
        &cloud,
        PrincipalBody {
            tenant_id: tenant.id.clone(),
            display_name: Some("tether-onboarding".into()),
            secret: true,
            certificate: None,
        },
    )?;
    new_assignment(
        &cloud,
        RoleBody {
            principal_id: onboarding["clientId"].as_str().unwrap_or_default().into(),
            role: "onboarding".into(),
            scope: scope.clone(),
        },
    )?;
    let password = util::secret(12);
    let user = new_user(
        &cloud,
        UserBody {
            tenant_id: tenant.id.clone(),
            username: "operator@demo".into(),
            password: password.clone(),
        },
    )?;
    new_assignment(
        &cloud,
        RoleBody {
            principal_id: user.object_id.clone(),
            role: "administrator".into(),
            scope,
        },
    )?;
    Ok(created(json!({
        "tenantId": tenant.id,
        "subscriptionId": sub.id,
        "resourceGroup": rg.name,
        "location": location,
        "administrator": admin,
        "onboarding": onboarding,
        "user": {"username": user.username, "password": password, "objectId": user.object_id},
        "metricsKey": cloud.read(|m| m.meta.metrics_key.clone()),
    })))
}
