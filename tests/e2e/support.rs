//! Helpers shared by the suites.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;
use tether::runtime::{Call, ExtensionSpec, Limits, LoadedExtension, Runtime, RuntimeOptions};

pub type TestResult = anyhow::Result<()>;

/// The `tether` binary, with its state under `home`.
pub fn tether(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    cmd.env("TETHER_HOME", home).env_remove("TETHER_LOG");
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One runtime for the suites that drive the library, as a host process
/// has one: a fixture that misbehaves must not spoil it for the next.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| match Runtime::new(RuntimeOptions::default()) {
        Ok(runtime) => runtime,
        Err(e) => panic!("the runtime could not start: {e:#}"),
    })
}

/// Loads a component from its path with the given limits.
pub fn load(
    runtime: &Runtime,
    path: &str,
    limits: Limits,
    data: &Path,
) -> anyhow::Result<LoadedExtension> {
    let bytes = std::fs::read(path)?;
    let mut spec = ExtensionSpec::new(component_name(path), data);
    spec.limits = limits;
    runtime.load(&bytes, spec)
}

pub fn component_name(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("component")
        .to_string()
}

/// Proves the runtime still runs `hello` correctly.
pub fn assert_hello_still_works(runtime: &Runtime) -> TestResult {
    let data = tempfile::tempdir()?;
    let hello = load(
        runtime,
        tether_test_artifacts::HELLO,
        Limits::default(),
        data.path(),
    )?;
    let outcome = hello.call(Call::Invoke {
        command: "greet".into(),
        args: vec!["again".into()],
    })?;
    assert_eq!(outcome.output.as_deref(), Some("Hello, again!"));
    assert!(
        outcome
            .logs
            .iter()
            .any(|r| r.message == "hello: greeting again")
    );
    Ok(())
}

/// A loopback HTTP server answering every request with its body (which
/// [`set_body`](Self::set_body) changes), counting the requests it saw.
pub struct LoopbackHttp {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    body: Arc<std::sync::Mutex<String>>,
}

impl LoopbackHttp {
    pub fn start(body: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        let body = Arc::new(std::sync::Mutex::new(body.to_string()));
        let served = body.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                seen.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().map(|b| b.clone()).unwrap_or_default();
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Ok(Self {
            addr,
            requests,
            body,
        })
    }

    pub fn set_body(&self, body: &str) {
        if let Ok(mut b) = self.body.lock() {
            *b = body.to_string();
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn seen(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    tether::platform::is_admin()
}

/// `tether` as an unprivileged user (nobody), when we are root.
pub fn tether_unprivileged(home: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_tether"),
        ]);
        cmd.env("TETHER_HOME", home).env_remove("TETHER_LOG");
        cmd
    } else {
        tether(home)
    }
}

/// A real tinyproxy (Debian's), on a free loopback port, logging every
/// request to a file. Stopped when dropped.
pub struct Tinyproxy {
    pub url: String,
    log: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Info\nMaxClients 20\nAllow 127.0.0.1\n",
                log.display()
            ),
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        }
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("could not start tinyproxy ({e}); install it: apt-get install tinyproxy (.ci/run does)"))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "tinyproxy did not start listening on {port}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            log,
            child,
            _dir: dir,
        })
    }

    /// The request lines tinyproxy logged ("GET http://… HTTP/1.1").
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("): ").map(|(_, r)| r.to_string()))
            .filter(|r| {
                r.starts_with("GET ")
                    || r.starts_with("POST ")
                    || r.starts_with("PUT ")
                    || r.starts_with("CONNECT ")
            })
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bootstrapped tether-cloud with files holding the flags `tether connect`
/// needs, as an operator would keep them (secrets off the command line).
pub struct Cloud {
    pub cloud: tether_cloud::BackgroundCloud,
    pub demo: serde_json::Value,
    pub dir: tempfile::TempDir,
}

impl Cloud {
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(false)
    }

    /// A tether-cloud serving HTTPS with a CA of its own (the Azure SDK
    /// sends bearer tokens over HTTPS only); connects trust that CA.
    pub fn start_tls() -> anyhow::Result<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cloud = tether_cloud::BackgroundCloud::start(tether_cloud::CloudConfig {
            device_code_interval: 1,
            tls_ca_file: tls.then(|| dir.path().join("cloud-ca.pem")),
            ..Default::default()
        })?;
        let demo = cloud.admin()?.bootstrap()?;
        Ok(Self { cloud, demo, dir })
    }

    pub fn tenant(&self) -> String {
        self.demo["tenantId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn sub(&self) -> String {
        self.demo["subscriptionId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The target of a connect, without sign-in.
    pub fn target(&self) -> serde_json::Value {
        let mut target = serde_json::json!({
            "subscription-id": self.sub(),
            "resource-group": "demo",
            "location": "local",
            "tenant-id": self.tenant(),
            "cloud": self.cloud.metadata_url(),
        });
        if let Some(ca) = &self.cloud.ca_file {
            target["cloud-ca-cert"] = serde_json::json!(ca);
        }
        target
    }

    /// A config file with the target and a service principal's secret
    /// ("administrator" or "onboarding").
    pub fn config_file(&self, who: &str) -> anyhow::Result<std::path::PathBuf> {
        let mut v = self.target();
        v["service-principal-id"] = self.demo[who]["clientId"].clone();
        v["service-principal-secret"] = self.demo[who]["secret"].clone();
        let path = self.dir.path().join(format!("{who}.json"));
        std::fs::write(&path, serde_json::to_vec(&v)?)?;
        Ok(path)
    }

    /// An ARM access token for the demo administrator, obtained the way
    /// any client would (for `--access-token` and direct ARM calls).
    pub fn admin_arm_token(&self) -> anyhow::Result<String> {
        let admin = &self.demo["administrator"];
        let mut http = reqwest::blocking::Client::builder().no_proxy();
        if let Some(ca) = &self.cloud.ca_file {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?);
        }
        let http = http.build()?;
        let token: serde_json::Value = http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                self.cloud.url,
                self.tenant()
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", admin["clientId"].as_str().unwrap_or_default()),
                (
                    "client_secret",
                    admin["secret"].as_str().unwrap_or_default(),
                ),
                ("scope", &format!("{}/.default", self.cloud.url)),
            ])
            .send()?
            .json()?;
        token["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no token: {token}"))
    }

    /// The machines tether-cloud holds, with their extensions.
    pub fn machines(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let v = self.cloud.admin()?.get("/machines")?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }
}

/// Runs openssl, as an operator would to convert a certificate.
pub fn openssl(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| {
            anyhow::anyhow!("openssl is needed (apt-get install openssl; .ci/run does): {e}")
        })?;
    anyhow::ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Polls `f` until it finds something (60 s at most), naming `what` it
/// waited for if it never does.
pub fn wait_for<T>(what: &str, f: impl FnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
    wait_for_within(what, Duration::from_secs(60), f)
}

/// [`wait_for`], at most `max`.
pub fn wait_for_within<T>(
    what: &str,
    max: Duration,
    mut f: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = std::time::Instant::now() + max;
    loop {
        if let Some(found) = f()? {
            return Ok(found);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "never {what}");
        thread::sleep(Duration::from_millis(250));
    }
}

/// `tether config set KEY VALUE`, which must succeed.
pub fn config_set(home: &std::path::Path, key: &str, value: &str) -> TestResult {
    let out = tether(home).args(["config", "set", key, value]).output()?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(())
}
