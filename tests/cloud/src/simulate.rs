//! A fleet simulator: N machines, each with its own Ed25519 key, onboarded
//! the way `tether connect` onboards one (an ARM PUT by an onboarding
//! principal, then a token for the machine's own identity by a client
//! assertion it signs), then heartbeating at an interval, fetching their
//! desired extensions and reporting their status, over real HTTP against a
//! running tether-cloud. It measures throughput, latency percentiles and
//! errors. A load tool, so bounded: loopback only, a capped count of
//! machines and a capped duration.

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tether_cloud_api::agent::{
    DesiredExtensions, ExtensionStatusReport, HeartbeatRequest, HeartbeatResponse,
};
use tether_cloud_api::arm::{Machine, MachineProperties};
use tether_cloud_api::jwt;

/// The most machines one run impersonates.
pub const MAX_AGENTS: usize = 100_000;
/// The longest a run heartbeats.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// What a run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The tether-cloud (`http://127.0.0.1:PORT`): loopback only. With
    /// replicas, the public URL they were given.
    pub url: String,
    /// Replicas of it on one database (their own addresses, loopback
    /// only): requests go to `url` and these in turn.
    pub replicas: Vec<String>,
    pub admin_key: String,
    /// A `--tls` cloud's CA certificate (PEM).
    pub ca_pem: Option<String>,
    pub agents: usize,
    /// Each machine's heartbeat interval.
    pub interval: Duration,
    /// How long the machines heartbeat once all are onboarded.
    pub duration: Duration,
    /// Machines onboarding (and extensions being assigned) at once.
    pub concurrency: usize,
    /// Requests in flight at most, the fleet together: the connections it
    /// opens. A request waiting for one counts the wait in its latency.
    pub connections: usize,
    /// A machine fetches its desired extensions every this many heartbeats
    /// (and whenever a heartbeat says they changed).
    pub extensions_every: u32,
    /// How many of the machines get an extension assigned through ARM
    /// (a long-running PUT each) once onboarded, which they then fetch,
    /// "install" and report, ending its operation.
    pub assign: usize,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub agents: usize,
    pub onboarded: usize,
    /// Each machine's PUT and its first token.
    pub onboarding: Latencies,
    /// Paging through every machine of the subscription, as ARM lists it.
    pub list: ListReport,
    /// Extension PUTs by an administrator, one per machine assigned.
    pub assignments: Latencies,
    pub heartbeats: Latencies,
    pub extension_fetches: Latencies,
    pub status_reports: Latencies,
    /// Failed requests by what failed.
    pub errors: BTreeMap<String, u64>,
    /// The cloud's own account of its fleet, at the end.
    pub fleet: Value,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latencies {
    pub count: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListReport {
    pub machines: usize,
    pub pages: usize,
    pub seconds: f64,
}

impl Options {
    fn check(&self) -> Result<url::Url> {
        let url = loopback(&self.url)?;
        for replica in &self.replicas {
            loopback(replica)?;
        }
        anyhow::ensure!(
            (1..=MAX_AGENTS).contains(&self.agents),
            "--agents must be between 1 and {MAX_AGENTS}"
        );
        anyhow::ensure!(
            self.duration <= MAX_DURATION,
            "--duration may be at most {} s",
            MAX_DURATION.as_secs()
        );
        anyhow::ensure!(
            self.interval >= Duration::from_millis(10),
            "--interval must be at least 10ms"
        );
        anyhow::ensure!(self.concurrency >= 1, "--concurrency must be at least 1");
        anyhow::ensure!(self.connections >= 1, "--connections must be at least 1");
        Ok(url)
    }
}

/// `text` as a URL on this machine, or why not.
fn loopback(text: &str) -> Result<url::Url> {
    let url = url::Url::parse(text).with_context(|| format!("{text} is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    anyhow::ensure!(
        loopback,
        "the simulator only loads a tether-cloud on this machine (127.0.0.1, [::1] or localhost), not {text}"
    );
    Ok(url)
}

/// One simulated machine once onboarded.
struct Agent {
    /// Its resource's path.
    path: String,
    principal: String,
    key: SigningKey,
    token: String,
}

/// Latencies of one kind of request, and its failures.
#[derive(Default)]
struct Samples {
    micros: Mutex<Vec<u32>>,
}

impl Samples {
    fn record(&self, took: Duration) {
        let micros = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        self.micros
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(micros);
    }

    fn summary(&self, seconds: f64) -> Latencies {
        let mut micros =
            std::mem::take(&mut *self.micros.lock().unwrap_or_else(PoisonError::into_inner));
        micros.sort_unstable();
        let at = |q: f64| {
            if micros.is_empty() {
                return 0.0;
            }
            let i = ((micros.len() as f64 - 1.0) * q).round() as usize;
            f64::from(micros[i.min(micros.len() - 1)]) / 1000.0
        };
        Latencies {
            count: micros.len() as u64,
            seconds,
            per_second: if seconds > 0.0 {
                micros.len() as f64 / seconds
            } else {
                0.0
            },
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

struct Run {
    http: reqwest::Client,
    /// One permit per request in flight during the heartbeats.
    in_flight: tokio::sync::Semaphore,
    /// The public URL: what tokens and assertions name.
    base: String,
    /// Where requests go, in turn.
    targets: Vec<String>,
    next_target: std::sync::atomic::AtomicUsize,
    tenant: String,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Run {
    fn error(&self, what: &str, why: impl std::fmt::Display) {
        let key = format!("{what}: {why}");
        *self
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
    }

    fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base, self.tenant)
    }

    /// The next server to send a request to.
    fn at(&self) -> &str {
        let i = self
            .next_target
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.targets[i % self.targets.len()]
    }

    /// A token for a service principal by its secret, or why not.
    async fn sign_in(&self, client_id: &str, secret: &str, scope: &str) -> Result<String, String> {
        self.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .await
    }

    /// A token from the identity endpoint, or why not.
    async fn token(&self, form: &[(&str, &str)]) -> Result<String, String> {
        let answer = self
            .http
            .post(format!("{}/{}/oauth2/v2.0/token", self.at(), self.tenant))
            .form(form)
            .send()
            .await
            .map_err(|e| format!("unreachable ({e})"))?;
        let status = answer.status();
        let body: Value = answer.json().await.map_err(|e| format!("{status}: {e}"))?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{status} {}", body["error"].as_str().unwrap_or("")))
    }

    /// Onboards one machine as `tether connect` would.
    async fn onboard(&self, name: &str, path: &str, arm_token: &str) -> Result<Agent, String> {
        let key = SigningKey::from_bytes(&crate::util::random_bytes::<32>());
        let machine = Machine {
            location: "local".into(),
            properties: MachineProperties {
                vm_id: Some(crate::util::guid()),
                os_type: Some("linux".into()),
                os_name: Some("simulated".into()),
                agent_version: Some(env!("CARGO_PKG_VERSION").into()),
                client_public_key: Some(jwt::public_key_text(&key.verifying_key())),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = self
            .http
            .put(format!(
                "{}{path}?api-version={}",
                self.at(),
                tether_cloud_api::arm::API_VERSION
            ))
            .bearer_auth(arm_token)
            .json(&machine)
            .send()
            .await
            .map_err(|e| format!("unreachable ({e})"))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!("machine PUT {status}"));
        }
        let created: Machine = answer
            .json()
            .await
            .map_err(|e| format!("machine PUT answer: {e}"))?;
        let principal = created
            .identity
            .and_then(|i| i.principal_id)
            .ok_or_else(|| format!("{name} has no identity"))?;
        let token = self.machine_token(&principal, &key).await?;
        Ok(Agent {
            path: path.to_string(),
            principal,
            key,
            token,
        })
    }

    async fn machine_token(&self, principal: &str, key: &SigningKey) -> Result<String, String> {
        let assertion = jwt::client_assertion(
            principal,
            &self.token_url(),
            key,
            None,
            crate::util::real_now(),
            &crate::util::guid(),
        );
        let scope = format!("{}/agent/.default", self.base);
        self.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", principal),
            (
                "client_assertion_type",
                tether_cloud_api::identity::JWT_BEARER_ASSERTION,
            ),
            ("client_assertion", &assertion),
            ("scope", &scope),
        ])
        .await
    }
}

/// Simulates the fleet; returns what it measured.
pub async fn run(options: Options) -> Result<Report> {
    let url = options.check()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30));
    if let Some(pem) = &options.ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    let http = builder.build()?;
    let base = url.as_str().trim_end_matches('/').to_string();

    // A world of its own: a tenant, a subscription, a group and an
    // onboarding principal, as an operator would set them up.
    let group = format!("fleet-{}", crate::util::guid().get(..8).unwrap_or_default());
    let world: Value = http
        .post(format!("{base}/admin/bootstrap"))
        .bearer_auth(&options.admin_key)
        .json(&json!({"resourceGroup": group}))
        .send()
        .await
        .with_context(|| format!("could not reach tether-cloud at {base}"))?
        .error_for_status()
        .context("the admin API refused the bootstrap (is the admin key right?)")?
        .json()
        .await?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let run = Arc::new(Run {
        http,
        in_flight: tokio::sync::Semaphore::new(options.connections),
        base: base.clone(),
        targets: std::iter::once(base.clone())
            .chain(
                options
                    .replicas
                    .iter()
                    .map(|r| r.trim_end_matches('/').to_string()),
            )
            .collect(),
        next_target: Default::default(),
        tenant: text(&world["tenantId"]),
        errors: Mutex::new(BTreeMap::new()),
    });
    let subscription = text(&world["subscriptionId"]);
    let arm_scope = format!("{base}/.default");
    let (client_id, secret) = (
        text(&world["onboarding"]["clientId"]),
        text(&world["onboarding"]["secret"]),
    );
    let arm_token = run
        .sign_in(&client_id, &secret, &arm_scope)
        .await
        .map_err(|e| anyhow::anyhow!("the onboarding principal could not sign in: {e}"))?;

    // Onboarding, `concurrency` at a time.
    let onboarding = Arc::new(Samples::default());
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(options.concurrency));
    let mut joins = tokio::task::JoinSet::new();
    for i in 0..options.agents {
        let (run, onboarding, gate, arm_token) = (
            run.clone(),
            onboarding.clone(),
            gate.clone(),
            arm_token.clone(),
        );
        let name = format!("sim-{i:06}");
        let path = format!(
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.HybridCompute/machines/{name}"
        );
        joins.spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            let began = Instant::now();
            match run.onboard(&name, &path, &arm_token).await {
                Ok(agent) => {
                    onboarding.record(began.elapsed());
                    Some(agent)
                }
                Err(e) => {
                    run.error("onboarding", e);
                    None
                }
            }
        });
    }
    let mut agents = Vec::with_capacity(options.agents);
    while let Some(joined) = joins.join_next().await {
        if let Ok(Some(agent)) = joined {
            agents.push(agent);
        }
    }
    let onboarding = onboarding.summary(started.elapsed().as_secs_f64());

    let list = list_all(&run, &subscription, &arm_token).await;

    let (admin_id, admin_secret) = (
        text(&world["administrator"]["clientId"]),
        text(&world["administrator"]["secret"]),
    );
    let assignments = if options.assign > 0 {
        let admin_token = run
            .sign_in(&admin_id, &admin_secret, &arm_scope)
            .await
            .map_err(|e| anyhow::anyhow!("the administrator could not sign in: {e}"))?;
        let paths: Vec<String> = agents
            .iter()
            .take(options.assign)
            .map(|a| a.path.clone())
            .collect();
        assign(&run, paths, &admin_token, options.concurrency).await
    } else {
        Latencies::default()
    };

    // Heartbeats: each machine on its own interval, the fleet's spread
    // evenly across it.
    let heartbeats = Arc::new(Samples::default());
    let fetches = Arc::new(Samples::default());
    let reports = Arc::new(Samples::default());
    let onboarded = agents.len();
    let started = Instant::now();
    let until = started + options.duration;
    let mut joins = tokio::task::JoinSet::new();
    for (i, agent) in agents.into_iter().enumerate() {
        let offset = options.interval.mul_f64(i as f64 / onboarded.max(1) as f64);
        let (run, heartbeats, fetches, reports) = (
            run.clone(),
            heartbeats.clone(),
            fetches.clone(),
            reports.clone(),
        );
        let every = options.extensions_every.max(1);
        let interval = options.interval;
        joins.spawn(async move {
            tokio::time::sleep(offset).await;
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut agent = agent;
            let mut seen_sequence = None;
            let mut reported = BTreeMap::new();
            for beat in 0u64.. {
                let due = ticks.tick().await.into_std();
                if Instant::now() >= until {
                    return;
                }
                let Ok(_permit) = run.in_flight.acquire().await else {
                    return;
                };
                let sequence = match heartbeat(&run, &agent, due, &heartbeats).await {
                    Ok(sequence) => sequence,
                    Err(Beat::Unauthorized) => {
                        // Its token ran out: sign in again, as the agent does.
                        run.error("heartbeat", "401, signing in again");
                        match run.machine_token(&agent.principal, &agent.key).await {
                            Ok(token) => agent.token = token,
                            Err(e) => run.error("machine token", e),
                        }
                        continue;
                    }
                    Err(Beat::Failed) => continue,
                };
                if beat % u64::from(every) == 0 || seen_sequence != Some(sequence) {
                    seen_sequence = Some(sequence);
                    reconcile(&run, &agent, &mut reported, &fetches, &reports).await;
                }
            }
        });
    }
    while joins.join_next().await.is_some() {}
    // Requests start only within the duration; a machine's last tick may
    // come an interval after it, with nothing to send.
    let seconds = started.elapsed().min(options.duration).as_secs_f64();
    let fleet = async {
        run.http
            .get(format!("{base}/admin/fleet"))
            .bearer_auth(&options.admin_key)
            .send()
            .await?
            .json::<Value>()
            .await
    }
    .await
    .unwrap_or(Value::Null);
    let errors = std::mem::take(&mut *run.errors.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Report {
        agents: options.agents,
        onboarded,
        onboarding,
        list,
        assignments,
        heartbeats: heartbeats.summary(seconds),
        extension_fetches: fetches.summary(seconds),
        status_reports: reports.summary(seconds),
        errors,
        fleet,
    })
}

enum Beat {
    Unauthorized,
    Failed,
}

/// One heartbeat, due at `due` (its latency counts from then, waiting for
/// a connection included); the extensions' sequence it was answered with.
async fn heartbeat(run: &Run, agent: &Agent, due: Instant, samples: &Samples) -> Result<u64, Beat> {
    let request = HeartbeatRequest {
        agent_version: env!("CARGO_PKG_VERSION").into(),
        service_statuses: json!({"extensionService": {"status": "running"}}),
        agent_configuration: Value::Null,
        extensions: Vec::new(),
    };
    let began = due;
    let answer = run
        .http
        .post(format!("{}/agent/v1/heartbeat", run.at()))
        .bearer_auth(&agent.token)
        .json(&request)
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            run.error("heartbeat", format!("unreachable ({})", e.without_url()));
            return Err(Beat::Failed);
        }
    };
    let status = answer.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(Beat::Unauthorized);
    }
    if !status.is_success() {
        run.error("heartbeat", status);
        return Err(Beat::Failed);
    }
    match answer.json::<HeartbeatResponse>().await {
        Ok(body) => {
            samples.record(began.elapsed());
            Ok(body.extensions_sequence)
        }
        Err(e) => {
            run.error("heartbeat", format!("answer: {e}"));
            Err(Beat::Failed)
        }
    }
}

/// Fetches the desired extensions and reports each that changed since
/// it was last reported (`reported`: name to sequence) as running, as the
/// agent reports what it applied.
async fn reconcile(
    run: &Run,
    agent: &Agent,
    reported: &mut BTreeMap<String, u64>,
    fetches: &Samples,
    reports: &Samples,
) {
    let began = Instant::now();
    let answer = run
        .http
        .get(format!("{}/agent/v1/extensions", run.at()))
        .bearer_auth(&agent.token)
        .send()
        .await;
    let desired = match answer {
        Ok(answer) if answer.status().is_success() => answer.json::<DesiredExtensions>().await,
        Ok(answer) => {
            run.error("extensions", answer.status());
            return;
        }
        Err(e) => {
            run.error("extensions", format!("unreachable ({})", e.without_url()));
            return;
        }
    };
    let desired = match desired {
        Ok(desired) => desired,
        Err(e) => {
            run.error("extensions", format!("answer: {e}"));
            return;
        }
    };
    fetches.record(began.elapsed());
    for extension in desired.extensions {
        if reported.get(&extension.name) == Some(&extension.sequence) {
            continue;
        }
        let report = ExtensionStatusReport {
            sequence: extension.sequence,
            state: "success".into(),
            version: extension.version.clone(),
            message: "enabled (simulated)".into(),
            document: None,
        };
        let began = Instant::now();
        let answer = run
            .http
            .post(format!(
                "{}/agent/v1/extensions/{}/status",
                run.at(),
                extension.name
            ))
            .bearer_auth(&agent.token)
            .json(&report)
            .send()
            .await;
        match answer {
            Ok(answer) if answer.status().is_success() => {
                reports.record(began.elapsed());
                reported.insert(extension.name, extension.sequence);
            }
            Ok(answer) => run.error("status report", answer.status()),
            Err(e) => run.error(
                "status report",
                format!("unreachable ({})", e.without_url()),
            ),
        }
    }
}

/// Assigns one extension to each machine at `paths`, `concurrency` at a
/// time, as an administrator would through ARM.
async fn assign(run: &Arc<Run>, paths: Vec<String>, token: &str, concurrency: usize) -> Latencies {
    let samples = Arc::new(Samples::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let started = Instant::now();
    let mut joins = tokio::task::JoinSet::new();
    for path in paths {
        let (run, samples, gate, token) = (
            run.clone(),
            samples.clone(),
            gate.clone(),
            token.to_string(),
        );
        joins.spawn(async move {
            let Ok(_permit) = gate.acquire_owned().await else {
                return;
            };
            let began = Instant::now();
            let answer = run
                .http
                .put(format!(
                    "{}{path}/extensions/simulated?api-version={}",
                    run.at(),
                    tether_cloud_api::arm::API_VERSION
                ))
                .bearer_auth(&token)
                .json(&json!({
                    "location": "local",
                    "properties": {
                        "publisher": "Simulated",
                        "type": "Noop",
                        "typeHandlerVersion": "1.0.0",
                        "settings": {"assignedBy": "tether-cloud simulate"},
                    }
                }))
                .send()
                .await;
            match answer {
                Ok(answer) if answer.status().is_success() => samples.record(began.elapsed()),
                Ok(answer) => run.error("extension PUT", answer.status()),
                Err(e) => run.error(
                    "extension PUT",
                    format!("unreachable ({})", e.without_url()),
                ),
            }
        });
    }
    while joins.join_next().await.is_some() {}
    samples.summary(started.elapsed().as_secs_f64())
}

/// Pages through the subscription's machines as ARM lists them.
async fn list_all(run: &Run, subscription: &str, token: &str) -> ListReport {
    let began = Instant::now();
    let mut next = Some(format!(
        "{}/subscriptions/{subscription}/providers/Microsoft.HybridCompute/machines?api-version={}",
        run.base,
        tether_cloud_api::arm::API_VERSION
    ));
    let mut report = ListReport::default();
    while let Some(url) = next.take() {
        let page = async {
            run.http
                .get(&url)
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json::<Value>()
                .await
        }
        .await;
        match page {
            Ok(page) => {
                report.pages += 1;
                report.machines += page["value"].as_array().map_or(0, Vec::len);
                next = page["nextLink"].as_str().map(str::to_string);
            }
            Err(e) => run.error("list", e.without_url()),
        }
    }
    report.seconds = began.elapsed().as_secs_f64();
    report
}

impl Report {
    /// The report as a table for people.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} of {} machines onboarded in {:.1} s ({:.0}/s)\n",
            self.onboarded, self.agents, self.onboarding.seconds, self.onboarding.per_second
        );
        out.push_str(&format!(
            "listed {} machines in {} pages in {:.2} s\n",
            self.list.machines, self.list.pages, self.list.seconds
        ));
        out.push_str(&format!(
            "{:<20} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}\n",
            "request", "count", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        ));
        for (name, l) in [
            ("onboarding", &self.onboarding),
            ("extension PUT", &self.assignments),
            ("heartbeat", &self.heartbeats),
            ("extensions fetch", &self.extension_fetches),
            ("status report", &self.status_reports),
        ] {
            out.push_str(&format!(
                "{name:<20} {:>9} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                l.count, l.per_second, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            ));
        }
        if self.errors.is_empty() {
            out.push_str("errors: none\n");
        } else {
            out.push_str("errors:\n");
            for (what, n) in &self.errors {
                out.push_str(&format!("  {n:>7}  {what}\n"));
            }
        }
        if !self.fleet.is_null() {
            out.push_str(&format!("tether-cloud: {}\n", self.fleet));
        }
        out
    }
}
