//! Every grant succeeds; every failure is Entra-shaped.

use crate::support::*;
use anyhow::Result;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use sha2::Digest;
use tether_cloud_api::jwt::{self, Unverified};

#[test]
fn client_secret_tokens_verify_against_the_published_keys() -> Result<()> {
    let w = World::start()?;
    let token = w.admin_token()?;
    let keys: Value = w
        .http
        .get(format!("{}/{}/discovery/v2.0/keys", w.url(), w.tenant()))
        .send()?
        .json()?;
    // As Entra publishes them: RSA, kid = x5t, the certificate in x5c.
    let jwk = &keys["keys"][0];
    assert_eq!(jwk["kty"], "RSA", "{keys}");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], jwk["x5t"]);
    let header = Unverified::parse(&token)?.header;
    assert_eq!(header.alg, "RS256");
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    use base64::Engine as _;
    let cert = base64::engine::general_purpose::STANDARD
        .decode(jwk["x5c"][0].as_str().unwrap_or_default())?;
    assert_eq!(jwt::thumbprint(&cert), jwk["x5t"].as_str().unwrap_or("?"));
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert)?;
    let key = jwt::RsaPublicKey::from_der(parsed.public_key().raw)
        .ok_or_else(|| anyhow::anyhow!("the published certificate's key is not RSA"))?;
    let claims = Unverified::parse(&token)?.verify(&key, now())?;
    assert_eq!(claims["aud"], format!("{}/", w.url()));
    assert_eq!(claims["tid"], w.tenant());
    assert_eq!(claims["oid"], w.demo["administrator"]["objectId"]);
    assert_eq!(claims["iss"], format!("{}/{}/v2.0", w.url(), w.tenant()));
    assert!(claims["exp"].as_u64().unwrap_or(0) > now());
    // The same modulus in n as in the certificate.
    let n = jwt::b64url_decode(jwk["n"].as_str().unwrap_or_default())?;
    let pkcs1 = &key.0;
    assert!(
        pkcs1.windows(n.len()).any(|w| w == n.as_slice()),
        "n is the certificate's modulus"
    );
    Ok(())
}

#[test]
fn token_endpoint_failures_are_entra_shaped() -> Result<()> {
    let w = World::start()?;
    let admin = &w.demo["administrator"];
    let id = admin["clientId"].as_str().unwrap_or_default();
    let scope = w.arm_scope();
    let bad_secret = w.form(
        &w.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", "nope"),
            ("scope", &scope),
        ],
    )?;
    assert_oauth_error(bad_secret, 401, "invalid_client", "7000215")?;
    let unknown = w.form(
        &w.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "nope"),
            ("scope", &scope),
        ],
    )?;
    assert_oauth_error(unknown, 400, "unauthorized_client", "700016")?;
    let tenant = w.form(
        &format!("{}/no-such-tenant/oauth2/v2.0/token", w.url()),
        &[("grant_type", "client_credentials")],
    )?;
    assert_oauth_error(tenant, 400, "invalid_tenant", "90002")?;
    let missing = w.form(&w.token_url(), &[("client_id", id)])?;
    assert_oauth_error(missing, 400, "invalid_request", "900144")?;
    let grant = w.form(&w.token_url(), &[("grant_type", "password")])?;
    assert_oauth_error(grant, 400, "unsupported_grant_type", "70003")?;
    let secret = admin["secret"].as_str().unwrap_or_default();
    let bad_scope = w.form(
        &w.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "https://graph.example/.default"),
        ],
    )?;
    assert_oauth_error(bad_scope, 400, "invalid_scope", "70011")?;
    Ok(())
}

#[test]
fn certificate_assertions_get_tokens_once() -> Result<()> {
    let w = World::start()?;
    let sp = w.admin.post(
        "/servicePrincipals",
        json!({"tenantId": w.tenant(), "certificate": "generate"}),
    )?;
    let pem = sp["certificatePem"].as_str().unwrap_or_default();
    let block = |label: &str| -> Result<Vec<u8>> {
        tether_cloud_api::pem::block(pem, label)
            .ok_or_else(|| anyhow::anyhow!("no {label} in {pem}"))
    };
    // An RSA key, PKCS#8 v1 (version 0, no public key inside).
    let pkcs8 = block("PRIVATE KEY")?;
    let key = jwt::RsaSigner::from_pkcs8(&pkcs8)?;
    let der = block("CERTIFICATE")?;
    assert_eq!(sp["thumbprint"], jwt::thumbprint(&der).as_str());
    let client_id = sp["clientId"].as_str().unwrap_or_default();
    let assertion =
        jwt::client_assertion(client_id, &w.token_url(), &key, Some(&der), now(), "jti-1");
    let header = Unverified::parse(&assertion)?.header;
    assert_eq!(header.alg, "RS256");
    assert_eq!(
        header.x5t_s256.as_deref(),
        Some(jwt::thumbprint_s256(&der).as_str())
    );
    let form = |a: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", client_id.to_string()),
            (
                "client_assertion_type",
                tether_cloud_api::identity::JWT_BEARER_ASSERTION.to_string(),
            ),
            ("client_assertion", a.to_string()),
            ("scope", w.arm_scope()),
        ]
    };
    let ok = w.http.post(w.token_url()).form(&form(&assertion)).send()?;
    assert_eq!(ok.status(), 200);
    let replay = w.http.post(w.token_url()).form(&form(&assertion)).send()?;
    assert_oauth_error(replay, 401, "invalid_client", "700027")?;
    let wrong_aud = jwt::client_assertion(
        client_id,
        "http://elsewhere/token",
        &key,
        Some(&der),
        now(),
        "jti-2",
    );
    assert_oauth_error(
        w.http.post(w.token_url()).form(&form(&wrong_aud)).send()?,
        401,
        "invalid_client",
        "700027",
    )?;
    // Another RSA key naming the same certificate.
    let other = jwt::RsaSigner::from_pkcs8(&block_of(&w.admin.post(
        "/servicePrincipals",
        json!({"tenantId": w.tenant(), "certificate": "generate"}),
    )?)?)?;
    let forged = jwt::client_assertion(
        client_id,
        &w.token_url(),
        &other,
        Some(&der),
        now(),
        "jti-3",
    );
    assert_oauth_error(
        w.http.post(w.token_url()).form(&form(&forged)).send()?,
        401,
        "invalid_client",
        "700027",
    )?;
    // An Ed25519 signature offered for the RSA certificate: the key picks
    // the algorithm, never the token.
    let confused = jwt::client_assertion(
        client_id,
        &w.token_url(),
        &SigningKey::from_bytes(&tether_key()),
        Some(&der),
        now(),
        "jti-4",
    );
    assert_oauth_error(
        w.http.post(w.token_url()).form(&form(&confused)).send()?,
        401,
        "invalid_client",
        "700027",
    )?;
    Ok(())
}

/// The PKCS#8 key of a generated principal's PEM bundle.
fn block_of(sp: &Value) -> Result<Vec<u8>> {
    let pem = sp["certificatePem"].as_str().unwrap_or_default();
    tether_cloud_api::pem::block(pem, "PRIVATE KEY")
        .ok_or_else(|| anyhow::anyhow!("no key in {pem}"))
}

fn start_device_code(w: &World, scope: &str) -> Result<Value> {
    let response = w.form(
        &format!("{}/{}/oauth2/v2.0/devicecode", w.url(), w.tenant()),
        &[("client_id", "tether-agent"), ("scope", scope)],
    )?;
    assert_eq!(response.status(), 200);
    Ok(response.json()?)
}

fn poll(w: &World, device_code: &str) -> Result<reqwest::blocking::Response> {
    w.form(
        &w.token_url(),
        &[
            ("grant_type", tether_cloud_api::identity::DEVICE_CODE_GRANT),
            ("client_id", "tether-agent"),
            ("device_code", device_code),
        ],
    )
}

#[test]
fn device_code_flow_pending_slow_down_approved_denied_expired() -> Result<()> {
    let w = World::start()?;
    let scope = format!("{} offline_access", w.arm_scope());
    let dc = start_device_code(&w, &scope)?;
    assert_eq!(dc["interval"], 1);
    assert!(
        dc["message"]
            .as_str()
            .unwrap_or_default()
            .contains(dc["user_code"].as_str().unwrap_or("?"))
    );
    let code = dc["device_code"].as_str().unwrap_or_default();
    assert_oauth_error(poll(&w, code)?, 400, "authorization_pending", "70016")?;
    assert_oauth_error(poll(&w, code)?, 400, "slow_down", "70016")?;
    w.admin.approve_device_code(
        dc["user_code"].as_str().unwrap_or_default(),
        "operator@demo",
    )?;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let token: Value = poll(&w, code)?.json()?;
    assert!(token["access_token"].is_string(), "{token}");
    assert!(
        token["refresh_token"].is_string(),
        "offline_access asked for a refresh token: {token}"
    );
    // A redeemed code is gone.
    assert_oauth_error(poll(&w, code)?, 400, "invalid_grant", "70000")?;

    let denied = start_device_code(&w, &w.arm_scope())?;
    w.admin
        .deny_device_code(denied["user_code"].as_str().unwrap_or_default())?;
    assert_oauth_error(
        poll(&w, denied["device_code"].as_str().unwrap_or_default())?,
        400,
        "access_denied",
        "70016",
    )?;

    let expired = start_device_code(&w, &w.arm_scope())?;
    w.admin.advance_clock(901)?;
    assert_oauth_error(
        poll(&w, expired["device_code"].as_str().unwrap_or_default())?,
        400,
        "expired_token",
        "70020",
    )?;
    Ok(())
}

#[test]
fn browser_flow_with_pkce_and_refresh() -> Result<()> {
    let w = World::start()?;
    let verifier = "a-verifier-of-enough-length-for-pkce-0123456789";
    let challenge = jwt::b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = "http://127.0.0.1:9/callback";
    let scope = format!("{} offline_access", w.arm_scope());
    let authorize = format!("{}/{}/oauth2/v2.0/authorize", w.url(), w.tenant());
    let query = [
        ("client_id", "tether-agent"),
        ("response_type", "code"),
        ("redirect_uri", redirect),
        ("scope", scope.as_str()),
        ("state", "s1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = w.http.get(&authorize).query(&query).send()?;
    assert_eq!(page.status(), 200);
    assert!(page.text()?.contains("<form method=post>"));

    let password = w.demo["user"]["password"].as_str().unwrap_or_default();
    let mut form: Vec<(&str, &str)> = query.to_vec();
    form.extend([("username", "operator@demo"), ("password", "wrong")]);
    assert_eq!(w.http.post(&authorize).form(&form).send()?.status(), 401);
    form.truncate(query.len());
    form.extend([("username", "operator@demo"), ("password", password)]);
    let redirected = w.http.post(&authorize).form(&form).send()?;
    assert!(redirected.status().is_redirection());
    let location = url::Url::parse(redirected.headers()["location"].to_str()?)?;
    assert!(location.as_str().starts_with(redirect));
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "s1");
    let code = pairs["code"].clone();

    let exchange = |code: &str, verifier: &str| {
        w.form(
            &w.token_url(),
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "tether-agent"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ],
        )
    };
    let token: Value = exchange(&code, verifier)?.json()?;
    assert!(token["access_token"].is_string(), "{token}");
    assert_oauth_error(exchange(&code, verifier)?, 400, "invalid_grant", "70008")?;

    // A code with the wrong verifier is refused.
    let again = w.http.post(&authorize).form(&form).send()?;
    let location = url::Url::parse(again.headers()["location"].to_str()?)?;
    let code2 = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    assert_oauth_error(
        exchange(&code2, "not-the-verifier")?,
        400,
        "invalid_grant",
        "501481",
    )?;

    // Refresh rotates the refresh token; the old one is spent.
    let refresh = token["refresh_token"].as_str().unwrap_or_default();
    let renewed: Value = w
        .form(
            &w.token_url(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "tether-agent"),
                ("refresh_token", refresh),
            ],
        )?
        .json()?;
    assert!(renewed["access_token"].is_string(), "{renewed}");
    assert_ne!(renewed["refresh_token"], token["refresh_token"]);
    let spent = w.form(
        &w.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "tether-agent"),
            ("refresh_token", refresh),
        ],
    )?;
    assert_oauth_error(spent, 400, "invalid_grant", "9002313")?;

    // Only loopback redirect URIs are allowed for a public client.
    let mut evil = query.to_vec();
    evil[2] = ("redirect_uri", "https://evil.example/cb");
    let refused = w.http.get(&authorize).query(&evil).send()?;
    assert_oauth_error(refused, 400, "invalid_request", "50011")?;
    Ok(())
}

#[test]
fn machines_get_tokens_with_their_own_key() -> Result<()> {
    let w = World::start()?;
    let (machine, key) = w.connect("m-identity", "vm-1")?;
    let token = w.machine_token(&machine, &key)?;
    let claims = Unverified::parse(&token)?.claims;
    assert_eq!(claims["xms_mirid"], machine["id"]);
    assert_eq!(claims["aud"], format!("{}/agent/", w.url()));
    // Another key cannot speak for the machine.
    let stranger = SigningKey::from_bytes(&tether_key());
    assert!(w.machine_token(&machine, &stranger).is_err());
    Ok(())
}

#[test]
fn an_administrator_can_approve_or_deny_a_browser_sign_in() -> Result<()> {
    let w = World::start()?;
    let verifier = "another-verifier-of-enough-length-0123456789abcdef";
    let challenge = jwt::b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    let authorize = format!("{}/{}/oauth2/v2.0/authorize", w.url(), w.tenant());
    let scope = w.arm_scope();
    let query = [
        ("client_id", "tether-agent"),
        ("response_type", "code"),
        ("redirect_uri", "http://127.0.0.1:9/cb"),
        ("scope", scope.as_str()),
        ("state", "s9"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let sign_in_id = |w: &World| -> Result<String> {
        let page = w.http.get(&authorize).query(&query).send()?.text()?;
        let id = page
            .split("<code id=signin>")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap_or_default()
            .to_string();
        anyhow::ensure!(id.len() == 8, "no sign-in id on the page: {page}");
        Ok(id)
    };
    let id = sign_in_id(&w)?;
    let cont = format!(
        "{}/{}/oauth2/v2.0/authorize/continue?id={id}",
        w.url(),
        w.tenant()
    );
    let waiting = w.http.get(&cont).send()?;
    assert_eq!(waiting.status(), 200);
    assert!(waiting.text()?.contains("Waiting for an administrator"));
    w.admin.post(
        &format!("/signIns/{id}/approve"),
        json!({"username": "operator@demo"}),
    )?;
    let redirected = w.http.get(&cont).send()?;
    assert!(redirected.status().is_redirection());
    let location = url::Url::parse(redirected.headers()["location"].to_str()?)?;
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let token: Value = w
        .form(
            &w.token_url(),
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "tether-agent"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/cb"),
                ("code_verifier", verifier),
            ],
        )?
        .json()?;
    assert!(token["access_token"].is_string(), "{token}");

    let denied = sign_in_id(&w)?;
    w.admin
        .post(&format!("/signIns/{denied}/deny"), json!({}))?;
    let redirected = w
        .http
        .get(format!(
            "{}/{}/oauth2/v2.0/authorize/continue?id={denied}",
            w.url(),
            w.tenant()
        ))
        .send()?;
    let location = redirected.headers()["location"].to_str()?.to_string();
    assert!(location.contains("error=access_denied"), "{location}");
    assert!(
        w.admin
            .post(
                &format!("/signIns/{denied}/approve"),
                json!({"username": "operator@demo"})
            )
            .is_err(),
        "a settled sign-in cannot be approved"
    );
    Ok(())
}
