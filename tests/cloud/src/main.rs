//! `tether-cloud`: serve a local control plane, or drive a running one.

// A busy server allocates from every worker and the store's writer at
// once; mimalloc keeps them from contending, and gives memory back, where
// glibc's allocator keeps what a burst took.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tether_cloud::client::AdminClient;
use tether_cloud::{CloudConfig, Fault};

/// A local control plane for Tether: Entra-shaped identity, ARM machines and
/// extensions, the agent service, an extension gallery, and faults.
#[derive(Parser)]
#[command(name = "tether-cloud", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until Ctrl-C.
    Serve(ServeArgs),
    /// Drive a running tether-cloud through its admin API.
    Admin(AdminArgs),
    /// Impersonate a fleet of machines against a running tether-cloud
    /// (on this machine): onboard them, heartbeat, fetch extensions,
    /// report status; print throughput, latency percentiles and errors.
    Simulate(SimulateArgs),
}

#[derive(Args)]
struct SimulateArgs {
    /// The running tether-cloud (loopback only).
    #[arg(
        long,
        env = "TETHER_CLOUD_URL",
        default_value = "http://127.0.0.1:8450"
    )]
    url: String,
    /// The admin key tether-cloud printed when it started.
    #[arg(long, env = "TETHER_CLOUD_ADMIN_KEY", hide_env_values = true)]
    admin_key: String,
    /// Another replica on the same database, by its own address (repeat
    /// for more): requests go to --url (their public URL, which must
    /// reach one of them) and these in turn.
    #[arg(long = "replica")]
    replicas: Vec<String>,
    /// The CA certificate of a `serve --tls` cloud.
    #[arg(long, env = "TETHER_CLOUD_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// How many machines to impersonate (at most 100000).
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Each machine's heartbeat interval (10s, 500ms, …).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    interval: std::time::Duration,
    /// How long they heartbeat once onboarded (at most 1h).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// Machines onboarding (and extensions being assigned) at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Requests in flight at most while heartbeating (the connections the
    /// fleet opens); a request that waits for one counts the wait.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Fetch desired extensions every N heartbeats (and when they change).
    #[arg(long, default_value_t = 30)]
    extensions_every: u32,
    /// Assign an extension (through ARM) to this many of the machines,
    /// which they fetch and report; all of them unless told.
    #[arg(long)]
    assign: Option<usize>,
    /// Print the report as one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Where to listen (loopback only unless you mean it).
    #[arg(long, default_value = "127.0.0.1:8450")]
    listen: SocketAddr,
    /// Keep the state in this SQLite database (created if missing; a JSON
    /// state file of an earlier tether-cloud is migrated, and kept beside
    /// it as FILE.json-before-sqlite). Without it, nothing outlives the
    /// process.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Keep the state in this PostgreSQL database instead
    /// (postgres://USER:PASSWORD@HOST:PORT/DATABASE); prefer
    /// TETHER_CLOUD_DATABASE, which keeps the password off the command line.
    #[arg(
        long,
        env = "TETHER_CLOUD_DATABASE",
        hide_env_values = true,
        conflicts_with = "state"
    )]
    database: Option<String>,
    /// The URL clients reach this server by, when it is one of several
    /// replicas on one database behind a load balancer (tokens, links and
    /// the metadata document name it).
    #[arg(long)]
    public_url: Option<String>,
    /// Items per page of ARM lists.
    #[arg(long, default_value_t = 100)]
    page_size: usize,
    /// The device flow's polling interval, in seconds.
    #[arg(long, default_value_t = 5)]
    device_code_interval: u64,
    /// Create a demo tenant, subscription, group, principals and user, and
    /// print them.
    #[arg(long)]
    bootstrap: bool,
    /// Serve HTTPS with a certificate authority generated now; its
    /// certificate is written to --ca-cert-file for clients to trust.
    #[arg(long)]
    tls: bool,
    /// Where --tls writes the CA certificate.
    #[arg(long, default_value = "tether-cloud-ca.pem", requires = "tls")]
    ca_cert_file: PathBuf,
    /// Print the endpoints (and the demo world) as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AdminArgs {
    /// The running tether-cloud.
    #[arg(
        long,
        env = "TETHER_CLOUD_URL",
        default_value = "http://127.0.0.1:8450"
    )]
    url: String,
    /// The admin key tether-cloud printed when it started.
    #[arg(long, env = "TETHER_CLOUD_ADMIN_KEY", hide_env_values = true)]
    admin_key: String,
    /// The CA certificate a `serve --tls` cloud wrote, to trust its
    /// https:// URL with.
    #[arg(long, env = "TETHER_CLOUD_CA_CERT")]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a demo world (tenant, subscription, group, principals, user).
    Bootstrap,
    /// Create a tenant.
    TenantCreate {
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a subscription in a tenant.
    SubscriptionCreate {
        #[arg(long)]
        tenant_id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a resource group.
    GroupCreate {
        #[arg(long)]
        subscription_id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        location: String,
    },
    /// Create a user (for the browser and device-code flows).
    UserCreate {
        #[arg(long)]
        tenant_id: String,
        #[arg(long)]
        username: String,
        /// The password; prefer TETHER_CLOUD_USER_PASSWORD.
        #[arg(long, env = "TETHER_CLOUD_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Create a service principal; prints its secret or certificate once.
    SpCreate {
        #[arg(long)]
        tenant_id: String,
        #[arg(long)]
        name: Option<String>,
        /// Create a client secret.
        #[arg(long)]
        secret: bool,
        /// `generate` for a new certificate and key, or a PEM certificate file to register.
        #[arg(long)]
        certificate: Option<String>,
    },
    /// Assign a role (onboarding, administrator, reader) at a scope.
    RoleAssign {
        /// Object id, client id, or user name.
        #[arg(long)]
        principal: String,
        #[arg(long)]
        role: String,
        /// /subscriptions/ID or /subscriptions/ID/resourceGroups/NAME
        #[arg(long)]
        scope: String,
    },
    /// Approve a pending device code as a user.
    DeviceApprove {
        code: String,
        #[arg(long)]
        username: String,
    },
    /// Deny a pending device code.
    DeviceDeny { code: String },
    /// Approve a pending browser sign-in (its id is on the sign-in page) as a user.
    SigninApprove {
        id: String,
        #[arg(long)]
        username: String,
    },
    /// Deny a pending browser sign-in.
    SigninDeny { id: String },
    /// Move the cloud's clock forward.
    ClockAdvance { seconds: u64 },
    /// Assign an extension to a machine (an ARM PUT, long-running).
    ExtensionAssign {
        /// The machine's resource id.
        #[arg(long)]
        machine_id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        publisher: String,
        #[arg(long = "type")]
        extension_type: String,
        #[arg(long)]
        version: String,
        /// JSON object.
        #[arg(long)]
        settings: Option<String>,
        /// JSON object, or @FILE.
        #[arg(long)]
        protected_settings: Option<String>,
    },
    /// Upload a package to the gallery.
    GalleryUpload {
        #[arg(long)]
        publisher: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        file: PathBuf,
    },
    /// Inject a fault on requests whose path starts with --path.
    FaultAdd {
        #[arg(long)]
        path: String,
        #[arg(long)]
        method: Option<String>,
        #[arg(long)]
        status: Option<u16>,
        #[arg(long)]
        retry_after: Option<u64>,
        #[arg(long)]
        latency_ms: Option<u64>,
        #[arg(long)]
        reset: bool,
        /// Fire for the next N matching requests only.
        #[arg(long)]
        count: Option<u32>,
        /// Fire with this probability (0 to 1).
        #[arg(long)]
        probability: Option<f64>,
    },
    /// List the faults.
    FaultList,
    /// Remove every fault.
    FaultClear,
    /// List the requests seen (after sequence --since).
    Requests {
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Forget them instead.
        #[arg(long)]
        clear: bool,
    },
    /// List machines with their extensions.
    Machines,
    /// The fleet at a glance: machines by status, extensions, operations
    /// in progress, this server's memory.
    Fleet,
}

fn json_arg(text: &str, what: &str) -> Result<Value> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("could not read {what} from {path}"))?,
        None => text.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{what} are not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}

fn admin(args: AdminArgs) -> Result<Value> {
    let ca = match &args.ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("could not read the CA certificate {}", path.display()))?,
        ),
        None => None,
    };
    let c = AdminClient::with_ca(&args.url, &args.admin_key, ca.as_deref())?;
    match args.command {
        AdminCommand::Bootstrap => c.bootstrap(),
        AdminCommand::TenantCreate { name } => c.post("/tenants", json!({"name": name})),
        AdminCommand::SubscriptionCreate { tenant_id, name } => c.post(
            "/subscriptions",
            json!({"tenantId": tenant_id, "displayName": name}),
        ),
        AdminCommand::GroupCreate {
            subscription_id,
            name,
            location,
        } => c.post(
            &format!("/subscriptions/{subscription_id}/resourceGroups"),
            json!({"name": name, "location": location}),
        ),
        AdminCommand::UserCreate {
            tenant_id,
            username,
            password,
        } => c.post(
            "/users",
            json!({"tenantId": tenant_id, "username": username, "password": password}),
        ),
        AdminCommand::SpCreate {
            tenant_id,
            name,
            secret,
            certificate,
        } => {
            let certificate = match certificate.as_deref() {
                None => None,
                Some("generate") => Some("generate".to_string()),
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("could not read the certificate {path}"))?,
                ),
            };
            c.post("/servicePrincipals", json!({"tenantId": tenant_id, "displayName": name, "secret": secret, "certificate": certificate}))
        }
        AdminCommand::RoleAssign {
            principal,
            role,
            scope,
        } => c.post(
            "/roleAssignments",
            json!({"principalId": principal, "role": role, "scope": scope}),
        ),
        AdminCommand::DeviceApprove { code, username } => c.approve_device_code(&code, &username),
        AdminCommand::DeviceDeny { code } => c.deny_device_code(&code),
        AdminCommand::SigninApprove { id, username } => c.post(
            &format!("/signIns/{id}/approve"),
            json!({"username": username}),
        ),
        AdminCommand::SigninDeny { id } => c.post(&format!("/signIns/{id}/deny"), json!({})),
        AdminCommand::ClockAdvance { seconds } => c.advance_clock(seconds),
        AdminCommand::ExtensionAssign {
            machine_id,
            name,
            publisher,
            extension_type,
            version,
            settings,
            protected_settings,
        } => {
            let mut body = json!({"machineId": machine_id, "name": name, "publisher": publisher, "type": extension_type, "version": version});
            if let Some(s) = settings {
                body["settings"] = json_arg(&s, "settings")?;
            }
            if let Some(p) = protected_settings {
                body["protectedSettings"] = json_arg(&p, "protected settings")?;
            }
            c.post("/extensions", body)
        }
        AdminCommand::GalleryUpload {
            publisher,
            name,
            version,
            file,
        } => {
            let bytes = std::fs::read(&file)
                .with_context(|| format!("could not read {}", file.display()))?;
            c.upload_package(&publisher, &name, &version, bytes)
        }
        AdminCommand::FaultAdd {
            path,
            method,
            status,
            retry_after,
            latency_ms,
            reset,
            count,
            probability,
        } => {
            let id = c.add_fault(&Fault {
                path,
                method,
                status,
                retry_after,
                latency_ms,
                reset,
                count,
                probability,
                ..Default::default()
            })?;
            Ok(json!({"id": id}))
        }
        AdminCommand::FaultList => c.get("/faults"),
        AdminCommand::FaultClear => c.clear_faults().map(|()| json!({"cleared": true})),
        AdminCommand::Requests { since, clear } => {
            if clear {
                c.delete("/requests").map(|_| json!({"cleared": true}))
            } else {
                Ok(serde_json::to_value(c.requests(since)?)?)
            }
        }
        AdminCommand::Machines => c.get("/machines"),
        AdminCommand::Fleet => c.get("/fleet"),
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let config = CloudConfig {
        listen: args.listen,
        state_file: args.state,
        database_url: args.database,
        page_size: args.page_size,
        device_code_interval: args.device_code_interval,
        tls_ca_file: args.tls.then(|| args.ca_cert_file.clone()),
        public_url: args.public_url,
    };
    let cloud = tether_cloud::start(config).await?;
    let world = if args.bootstrap {
        // Through its own address: a public URL may name a balancer not up yet.
        let (url, key) = (cloud.listening.clone(), cloud.admin_key.clone());
        // Over TLS the client trusts the CA this cloud has just written.
        let ca = match args.tls {
            true => Some(
                std::fs::read_to_string(&args.ca_cert_file)
                    .with_context(|| format!("could not read {}", args.ca_cert_file.display()))?,
            ),
            false => None,
        };
        Some(
            tokio::task::spawn_blocking(move || {
                AdminClient::with_ca(&url, &key, ca.as_deref())?.bootstrap()
            })
            .await??,
        )
    } else {
        None
    };
    let info = json!({
        "url": cloud.url,
        "metadata": cloud.metadata_url(),
        "page": format!("{}/", cloud.url),
        "adminKey": cloud.admin_key,
        "caCertificate": args.tls.then(|| args.ca_cert_file.display().to_string()),
        "state": cloud.state,
        "listening": cloud.listening,
        "demo": world,
    });
    if args.json {
        println!("{info}");
    } else {
        println!("tether-cloud is serving on {}", cloud.url);
        println!("  cloud metadata:  {}", cloud.metadata_url());
        println!(
            "  identity:        {}/{{tenant}}/oauth2/v2.0/token",
            cloud.url
        );
        println!("  resource manager {}/subscriptions/…", cloud.url);
        println!("  agent service:   {}/agent/v1/…", cloud.url);
        println!("  gallery:         {}/gallery/…", cloud.url);
        println!("  page:            {}/", cloud.url);
        println!("  state:           {}", cloud.state);
        println!("  admin key:       {}", cloud.admin_key);
        if args.tls {
            println!(
                "  CA certificate:  {} (trust it: tether connect --cloud-ca-cert FILE)",
                args.ca_cert_file.display()
            );
        }
        println!(
            "    export TETHER_CLOUD_URL={} TETHER_CLOUD_ADMIN_KEY={}{}",
            cloud.url,
            cloud.admin_key,
            if args.tls {
                format!(" TETHER_CLOUD_CA_CERT={}", args.ca_cert_file.display())
            } else {
                String::new()
            }
        );
        if let Some(world) = &world {
            println!("demo world:\n{}", serde_json::to_string_pretty(world)?);
        }
    }
    tokio::signal::ctrl_c()
        .await
        .context("could not wait for Ctrl-C")?;
    cloud.stop().await;
    Ok(())
}

fn simulate(args: SimulateArgs) -> Result<()> {
    let ca_pem = match &args.ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("could not read the CA certificate {}", path.display()))?,
        ),
        None => None,
    };
    let options = tether_cloud::simulate::Options {
        url: args.url,
        admin_key: args.admin_key,
        replicas: args.replicas,
        ca_pem,
        agents: args.agents,
        interval: args.interval,
        duration: args.duration,
        concurrency: args.concurrency,
        connections: args.connections,
        extensions_every: args.extensions_every,
        assign: args.assign.unwrap_or(args.agents),
    };
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(tether_cloud::simulate::run(options))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TETHER_CLOUD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(serve(args))),
        Command::Simulate(args) => simulate(args),
        Command::Admin(args) => admin(args)
            .map(|v| println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
