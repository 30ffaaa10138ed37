//! Injected faults fire exactly as asked, and the request log shows them.

use crate::support::*;
use anyhow::Result;
use reqwest::Method;
use std::time::{Duration, Instant};
use tether_cloud::Fault;

#[test]
fn status_faults_fire_for_the_next_n_requests_only() -> Result<()> {
    let w = World::start()?;
    let token = w.admin_token()?;
    let since = w.admin.requests(0)?.last().map(|r| r.seq).unwrap_or(0);
    let id = w.admin.add_fault(&Fault {
        path: "/subscriptions/".into(),
        method: Some("GET".into()),
        status: Some(429),
        retry_after: Some(7),
        count: Some(2),
        ..Default::default()
    })?;
    for _ in 0..2 {
        let throttled = w.arm(Method::GET, &w.machine_path("m1"), &token, None)?;
        assert_eq!(throttled.headers()["retry-after"], "7");
        assert_arm_error(throttled, 429, "TooManyRequests")?;
    }
    // The third passes through to the real handler.
    assert_arm_error(
        w.arm(Method::GET, &w.machine_path("m1"), &token, None)?,
        404,
        "ResourceNotFound",
    )?;
    let seen = w.admin.requests(since)?;
    let gets: Vec<_> = seen
        .iter()
        .filter(|r| r.path.starts_with("/subscriptions/"))
        .collect();
    assert_eq!(
        gets.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 429, 404]
    );
    assert_eq!(gets.iter().filter(|r| r.fault == Some(id)).count(), 2);
    assert!(gets[0].query.contains("api-version"));
    Ok(())
}

#[test]
fn latency_reset_and_probability_faults() -> Result<()> {
    let w = World::start()?;
    let metadata = w.cloud.metadata_url();
    w.admin.add_fault(&Fault {
        path: "/metadata/".into(),
        latency_ms: Some(400),
        count: Some(1),
        ..Default::default()
    })?;
    let started = Instant::now();
    assert_eq!(w.http.get(&metadata).send()?.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));

    w.admin.add_fault(&Fault {
        path: "/metadata/".into(),
        reset: true,
        count: Some(1),
        ..Default::default()
    })?;
    let broken = w.http.get(&metadata).send().and_then(|r| r.bytes());
    assert!(
        broken.is_err(),
        "a reset connection must not deliver a body"
    );
    assert_eq!(w.http.get(&metadata).send()?.status(), 200);

    w.admin.add_fault(&Fault {
        path: "/metadata/".into(),
        status: Some(503),
        probability: Some(0.0),
        ..Default::default()
    })?;
    for _ in 0..20 {
        assert_eq!(w.http.get(&metadata).send()?.status(), 200);
    }
    w.admin.clear_faults()?;
    w.admin.add_fault(&Fault {
        path: "/metadata/".into(),
        status: Some(503),
        probability: Some(1.0),
        ..Default::default()
    })?;
    for _ in 0..5 {
        assert_eq!(w.http.get(&metadata).send()?.status(), 503);
    }
    // Faults on the token endpoint answer in Entra's shape.
    w.admin.add_fault(&Fault {
        path: format!("/{}/oauth2/", w.tenant()),
        status: Some(500),
        count: Some(1),
        ..Default::default()
    })?;
    let e = w.form(&w.token_url(), &[("grant_type", "client_credentials")])?;
    assert_oauth_error(e, 500, "temporarily_unavailable", "90033")?;
    Ok(())
}

#[test]
fn bad_faults_are_refused() -> Result<()> {
    let w = World::start()?;
    assert!(
        w.admin
            .add_fault(&Fault {
                path: "subscriptions".into(),
                status: Some(500),
                ..Default::default()
            })
            .is_err()
    );
    assert!(
        w.admin
            .add_fault(&Fault {
                path: "/x".into(),
                ..Default::default()
            })
            .is_err()
    );
    assert!(
        w.admin
            .add_fault(&Fault {
                path: "/x".into(),
                status: Some(500),
                probability: Some(2.0),
                ..Default::default()
            })
            .is_err()
    );
    Ok(())
}
