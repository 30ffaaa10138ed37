//! ARM: CRUD, paging, validation, RBAC, long-running operations.

use crate::support::*;
use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

#[test]
fn machines_crud_and_paging() -> Result<()> {
    let w = World::start()?;
    let token = w.admin_token()?;
    let body = json!({"location": "local", "tags": {"env": "test"}, "properties": {"vmId": "v1", "osType": "linux"}});
    let created = w.arm(
        Method::PUT,
        &w.machine_path("m1"),
        &token,
        Some(body.clone()),
    )?;
    assert_eq!(
        created.status(),
        200,
        "CreateOrUpdate answers 200, as the specification says"
    );
    let m: Value = created.json()?;
    assert_eq!(m["type"], "Microsoft.HybridCompute/machines");
    assert_eq!(m["properties"]["status"], "Connected");
    assert_eq!(m["identity"]["type"], "SystemAssigned");
    let principal = m["identity"]["principalId"].clone();
    // The same machine's PUT is idempotent and keeps its identity.
    let again = w.arm(Method::PUT, &w.machine_path("m1"), &token, Some(body))?;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>()?["identity"]["principalId"], principal);

    let patched: Value = w
        .arm(
            Method::PATCH,
            &w.machine_path("m1"),
            &token,
            Some(json!({"tags": {"env": "prod"}})),
        )?
        .json()?;
    assert_eq!(patched["tags"]["env"], "prod");
    let got: Value = w
        .arm(Method::GET, &w.machine_path("m1"), &token, None)?
        .json()?;
    assert_eq!(got["tags"]["env"], "prod");

    for name in ["m2", "m3"] {
        w.arm(
            Method::PUT,
            &w.machine_path(name),
            &token,
            Some(json!({"location": "local", "properties": {"vmId": name}})),
        )?;
    }
    // Page size is 2: three machines take two pages.
    let list = format!(
        "/subscriptions/{}/resourceGroups/demo/providers/Microsoft.HybridCompute/machines",
        w.sub()
    );
    let first: Value = w.arm(Method::GET, &list, &token, None)?.json()?;
    assert_eq!(first["value"].as_array().map(Vec::len), Some(2));
    let next = first["nextLink"].as_str().unwrap_or_default().to_string();
    assert!(
        next.contains("api-version=") && next.contains("$skiptoken="),
        "{next}"
    );
    let second: Value = w.http.get(&next).bearer_auth(&token).send()?.json()?;
    assert_eq!(second["value"].as_array().map(Vec::len), Some(1));
    assert!(second.get("nextLink").is_none());
    let by_sub: Value = w
        .arm(
            Method::GET,
            &format!(
                "/subscriptions/{}/providers/Microsoft.HybridCompute/machines",
                w.sub()
            ),
            &token,
            None,
        )?
        .json()?;
    assert_eq!(by_sub["value"].as_array().map(Vec::len), Some(2));

    assert_eq!(
        w.arm(Method::DELETE, &w.machine_path("m1"), &token, None)?
            .status(),
        200
    );
    assert_arm_error(
        w.arm(Method::GET, &w.machine_path("m1"), &token, None)?,
        404,
        "ResourceNotFound",
    )?;
    assert_eq!(
        w.arm(Method::DELETE, &w.machine_path("m1"), &token, None)?
            .status(),
        204
    );
    Ok(())
}

#[test]
fn bad_requests_get_arms_envelope() -> Result<()> {
    let w = World::start()?;
    let token = w.admin_token()?;
    let no_version = w
        .http
        .get(format!("{}{}", w.url(), w.machine_path("m1")))
        .bearer_auth(&token)
        .send()?;
    assert_arm_error(no_version, 400, "MissingApiVersionParameter")?;
    let bad_version = w
        .http
        .get(format!(
            "{}{}?api-version=yesterday",
            w.url(),
            w.machine_path("m1")
        ))
        .bearer_auth(&token)
        .send()?;
    assert_arm_error(bad_version, 400, "InvalidApiVersionParameter")?;
    // Date-shaped is not enough: only the versions served, each named.
    let unserved = w
        .http
        .get(format!(
            "{}{}?api-version=2019-03-18",
            w.url(),
            w.machine_path("m1")
        ))
        .bearer_auth(&token)
        .send()?;
    let e = assert_arm_error(unserved, 400, "InvalidApiVersionParameter")?;
    let message = e["error"]["message"].as_str().unwrap_or_default();
    for served in tether_cloud_api::arm::SUPPORTED_API_VERSIONS {
        assert!(message.contains(served), "{message}");
        let ok = w
            .http
            .get(format!(
                "{}{}?api-version={served}",
                w.url(),
                w.machine_path("absent")
            ))
            .bearer_auth(&token)
            .send()?;
        assert_eq!(ok.status(), 404, "{served} is served");
    }
    let body = json!({"location": "local", "properties": {"vmId": "v1"}});
    assert_arm_error(
        w.arm(
            Method::PUT,
            &w.machine_path("bad%20name"),
            &token,
            Some(body.clone()),
        )?,
        400,
        "InvalidResourceName",
    )?;
    assert_arm_error(
        w.arm(
            Method::PUT,
            &w.machine_path(&"x".repeat(55)),
            &token,
            Some(body.clone()),
        )?,
        400,
        "InvalidResourceName",
    )?;
    assert_arm_error(
        w.arm(
            Method::PUT,
            &w.machine_path("m1"),
            &token,
            Some(json!({"properties": {}})),
        )?,
        400,
        "LocationRequired",
    )?;
    let other_rg = format!(
        "/subscriptions/{}/resourceGroups/nope/providers/Microsoft.HybridCompute/machines/m1",
        w.sub()
    );
    assert_arm_error(
        w.arm(Method::PUT, &other_rg, &token, Some(body.clone()))?,
        404,
        "ResourceGroupNotFound",
    )?;
    let other_sub = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo/providers/Microsoft.HybridCompute/machines/m1";
    assert_arm_error(
        w.arm(Method::PUT, other_sub, &token, Some(body.clone()))?,
        404,
        "SubscriptionNotFound",
    )?;
    assert_arm_error(
        w.arm(
            Method::PUT,
            &w.machine_path("m1"),
            &token,
            Some(json!("not an object")),
        )?,
        400,
        "InvalidRequestContent",
    )?;
    // Another machine under a held name.
    assert_eq!(
        w.arm(Method::PUT, &w.machine_path("m1"), &token, Some(body))?
            .status(),
        200
    );
    let conflict = w.arm(
        Method::PUT,
        &w.machine_path("m1"),
        &token,
        Some(json!({"location": "local", "properties": {"vmId": "v2"}})),
    )?;
    let e = assert_arm_error(conflict, 409, "ResourceNameInUse")?;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--resource-name")
    );
    // No token, a garbage token.
    let anonymous = w
        .http
        .get(format!("{}{}?{API}", w.url(), w.machine_path("m1")))
        .send()?;
    let challenge = anonymous
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        challenge.starts_with(&format!(
            "Bearer authorization_uri=\"{}/{}\"",
            w.url(),
            w.tenant()
        )) && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(anonymous.headers().contains_key("x-ms-request-id"));
    assert_arm_error(anonymous, 401, "AuthenticationFailed")?;
    // The caller's correlation id comes back; ARM adds its request id.
    let correlated = w
        .http
        .get(format!("{}{}?{API}", w.url(), w.machine_path("m1")))
        .bearer_auth(&token)
        .header(
            "x-ms-correlation-request-id",
            "3b2c0d4e-0000-4000-8000-00000000c0de",
        )
        .send()?;
    assert_eq!(
        correlated
            .headers()
            .get("x-ms-correlation-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("3b2c0d4e-0000-4000-8000-00000000c0de")
    );
    assert_arm_error(
        w.arm(Method::GET, &w.machine_path("m1"), "garbage", None)?,
        401,
        "AuthenticationFailed",
    )?;
    Ok(())
}

#[test]
fn rbac_onboarding_may_create_but_not_delete_nor_manage_extensions() -> Result<()> {
    let w = World::start()?;
    let onboarding = w.sp_token("onboarding", &w.arm_scope())?;
    let body = json!({"location": "local", "properties": {"vmId": "v1"}});
    assert_eq!(
        w.arm(Method::PUT, &w.machine_path("m1"), &onboarding, Some(body))?
            .status(),
        200
    );
    assert_eq!(
        w.arm(Method::GET, &w.machine_path("m1"), &onboarding, None)?
            .status(),
        200
    );
    let e = assert_arm_error(
        w.arm(Method::DELETE, &w.machine_path("m1"), &onboarding, None)?,
        403,
        "AuthorizationFailed",
    )?;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("machines/delete")
    );
    let ext = json!({"properties": {"publisher": "P", "type": "T", "typeHandlerVersion": "1.0.0"}});
    assert_arm_error(
        w.arm(
            Method::PUT,
            &format!("{}/extensions/e1", w.machine_path("m1")),
            &onboarding,
            Some(ext),
        )?,
        403,
        "AuthorizationFailed",
    )?;
    // An agent-service token is not an ARM token.
    let wrong_audience = w.sp_token("administrator", &w.agent_scope())?;
    assert_arm_error(
        w.arm(Method::GET, &w.machine_path("m1"), &wrong_audience, None)?,
        401,
        "InvalidAuthenticationTokenAudience",
    )?;
    // A role on another resource group grants nothing here.
    w.admin.post(
        &format!("/subscriptions/{}/resourceGroups", w.sub()),
        json!({"name": "other", "location": "local"}),
    )?;
    let sp = w.admin.post(
        "/servicePrincipals",
        json!({"tenantId": w.tenant(), "secret": true}),
    )?;
    w.admin.post("/roleAssignments", json!({"principalId": sp["clientId"], "role": "administrator", "scope": format!("/subscriptions/{}/resourceGroups/other", w.sub())}))?;
    let scoped: Value = w
        .form(
            &w.token_url(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", sp["clientId"].as_str().unwrap_or_default()),
                ("client_secret", sp["secret"].as_str().unwrap_or_default()),
                ("scope", &w.arm_scope()),
            ],
        )?
        .json()?;
    let scoped = scoped["access_token"].as_str().unwrap_or_default();
    assert_arm_error(
        w.arm(Method::GET, &w.machine_path("m1"), scoped, None)?,
        403,
        "AuthorizationFailed",
    )?;
    Ok(())
}

fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn extension_put_and_delete_are_long_running_until_the_machine_reports() -> Result<()> {
    let w = World::start()?;
    let token = w.admin_token()?;
    let (machine, key) = w.connect("m1", "v1")?;
    let machine_token = w.machine_token(&machine, &key)?;
    let ext_path = format!("{}/extensions/inv", w.machine_path("m1"));
    let body = json!({"properties": {"publisher": "Contoso", "type": "Inventory", "typeHandlerVersion": "1.0.0",
                                     "settings": {"labels": {"a": "b"}}, "protectedSettings": {"token": "s3cret"}}});
    let put = w.arm(Method::PUT, &ext_path, &token, Some(body))?;
    assert_eq!(put.status(), 202);
    let async_url = header(&put, "azure-asyncoperation");
    let location = header(&put, "location");
    assert_eq!(header(&put, "retry-after"), "1");
    assert!(async_url.contains("/operationStatus/") && location.contains("/operationResults/"));
    let op: Value = w.http.get(&async_url).bearer_auth(&token).send()?.json()?;
    assert_eq!(op["status"], "InProgress");
    // The same operation under another subscription (one this caller may
    // read) is not found: an operation belongs to its own subscription.
    let other = w.admin.post(
        "/subscriptions",
        json!({"tenantId": w.tenant(), "displayName": "other"}),
    )?;
    let other = other["id"].as_str().unwrap_or_default().to_string();
    w.admin.post(
        "/roleAssignments",
        json!({"principalId": w.demo["administrator"]["clientId"], "role": "administrator",
               "scope": format!("/subscriptions/{other}")}),
    )?;
    let elsewhere = async_url.replace(&w.sub(), &other);
    assert_ne!(elsewhere, async_url);
    assert_arm_error(
        w.http.get(&elsewhere).bearer_auth(&token).send()?,
        404,
        "OperationNotFound",
    )?;
    assert_eq!(
        w.http.get(&location).bearer_auth(&token).send()?.status(),
        202
    );

    // ARM never returns protected settings; the machine gets them.
    let got = w.arm(Method::GET, &ext_path, &token, None)?.text()?;
    assert!(!got.contains("s3cret"), "{got}");
    let desired: Value = w
        .http
        .get(format!("{}/agent/v1/extensions", w.url()))
        .bearer_auth(&machine_token)
        .send()?
        .json()?;
    let wanted = &desired["extensions"][0];
    assert_eq!(wanted["protectedSettings"]["token"], "s3cret");
    assert_eq!(wanted["publisher"], "Contoso");
    let sequence = wanted["sequence"].as_u64().unwrap_or(0);

    let report = |state: &str, message: &str, sequence: u64| {
        w.http
            .post(format!("{}/agent/v1/extensions/inv/status", w.url()))
            .bearer_auth(&machine_token)
            .json(&json!({"sequence": sequence, "state": state, "version": "1.0.0", "message": message}))
            .send()
    };
    assert_eq!(report("success", "enabled", sequence)?.status(), 204);
    let op: Value = w.http.get(&async_url).bearer_auth(&token).send()?.json()?;
    assert_eq!(op["status"], "Succeeded");
    assert!(op["endTime"].is_string());
    assert_eq!(
        w.http.get(&location).bearer_auth(&token).send()?.status(),
        204
    );
    let ext: Value = w.arm(Method::GET, &ext_path, &token, None)?.json()?;
    assert_eq!(ext["properties"]["provisioningState"], "Succeeded");
    // When the machine reported, in RFC 3339 (an empty string breaks SDKs).
    let time = ext["properties"]["instanceView"]["status"]["time"]
        .as_str()
        .unwrap_or_default();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time:?}"
    );
    assert!(
        ext["systemData"]["createdAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{ext}"
    );
    assert_eq!(
        ext["properties"]["instanceView"]["status"]["code"],
        "ProvisioningState/succeeded"
    );

    // A refusal on the machine fails the operation with its reason.
    let update = w.arm(
        Method::PATCH,
        &ext_path,
        &token,
        Some(json!({"properties": {"typeHandlerVersion": "2.0.0"}})),
    )?;
    assert_eq!(update.status(), 202);
    let failed_url = header(&update, "azure-asyncoperation");
    let desired: Value = w
        .http
        .get(format!("{}/agent/v1/extensions", w.url()))
        .bearer_auth(&machine_token)
        .send()?
        .json()?;
    let sequence = desired["extensions"][0]["sequence"].as_u64().unwrap_or(0);
    report(
        "error",
        "policy: Contoso/Inventory is not in extensions.allowlist",
        sequence,
    )?;
    let op: Value = w.http.get(&failed_url).bearer_auth(&token).send()?.json()?;
    assert_eq!(op["status"], "Failed");
    assert!(
        op["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("allowlist")
    );

    // DELETE waits for the machine to report the removal.
    let delete = w.arm(Method::DELETE, &ext_path, &token, None)?;
    assert_eq!(delete.status(), 202);
    let delete_url = header(&delete, "azure-asyncoperation");
    let op: Value = w.http.get(&delete_url).bearer_auth(&token).send()?.json()?;
    assert_eq!(op["status"], "InProgress");
    let desired: Value = w
        .http
        .get(format!("{}/agent/v1/extensions", w.url()))
        .bearer_auth(&machine_token)
        .send()?
        .json()?;
    assert_eq!(desired["extensions"].as_array().map(Vec::len), Some(0));
    report(
        "removed",
        "uninstalled",
        desired["sequence"].as_u64().unwrap_or(0),
    )?;
    let op: Value = w.http.get(&delete_url).bearer_auth(&token).send()?.json()?;
    assert_eq!(op["status"], "Succeeded");
    assert_arm_error(
        w.arm(Method::GET, &ext_path, &token, None)?,
        404,
        "ResourceNotFound",
    )?;
    // Assigned again once gone, it is numbered past everything the
    // machine was sent before, so an agent that never saw the removal
    // still takes the new assignment.
    let before = desired["sequence"].as_u64().unwrap_or(0);
    let again = w.arm(
        Method::PUT,
        &ext_path,
        &token,
        Some(json!({"location": "local", "properties": {"publisher": "Contoso", "type": "Inventory", "typeHandlerVersion": "1.0.0"}})),
    )?;
    assert_eq!(again.status(), 202);
    let desired: Value = w
        .http
        .get(format!("{}/agent/v1/extensions", w.url()))
        .bearer_auth(&machine_token)
        .send()?
        .json()?;
    let now_wanted = desired["extensions"][0]["sequence"].as_u64().unwrap_or(0);
    assert!(now_wanted > before, "{now_wanted} after {before}");
    // A finished operation's outcome is kept for a day, then forgotten.
    w.admin
        .advance_clock(tether_cloud::OPERATION_RETENTION - 60)?;
    let token = w.admin_token()?;
    let op: Value = w.http.get(&delete_url).bearer_auth(&token).send()?.json()?;
    assert_eq!(op["status"], "Succeeded");
    w.admin.advance_clock(120)?;
    let token = w.admin_token()?;
    assert_arm_error(
        w.http.get(&delete_url).bearer_auth(&token).send()?,
        404,
        "OperationNotFound",
    )?;
    Ok(())
}

#[test]
fn deleting_an_extension_the_machine_never_installed_completes_at_once() -> Result<()> {
    let w = World::start()?;
    let token = w.admin_token()?;
    w.connect("m1", "v1")?;
    let ext_path = format!("{}/extensions/e1", w.machine_path("m1"));
    w.arm(
        Method::PUT,
        &ext_path,
        &token,
        Some(json!({"properties": {"publisher": "P", "type": "T", "typeHandlerVersion": "1.0.0"}})),
    )?;
    let delete = w.arm(Method::DELETE, &ext_path, &token, None)?;
    let op: Value = w
        .http
        .get(header(&delete, "azure-asyncoperation"))
        .bearer_auth(&token)
        .send()?
        .json()?;
    assert_eq!(op["status"], "Succeeded");
    assert_eq!(
        w.arm(Method::DELETE, &ext_path, &token, None)?.status(),
        204
    );
    Ok(())
}
