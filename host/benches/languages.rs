//! `cargo bench --bench languages`: the hello extension in Rust, Python
//! and JavaScript side by side in one run, installed from signed packages
//! and called as the service calls them. Targets (issue #15): ready to
//! call ≤ 5 ms after a service restart; install to the first successful
//! call ≤ 2 s; per-call overhead (a call as the service makes it against
//! bare wasmtime's instantiate-and-call of the same component) within 2x
//! of the Rust sample's.
//!
//! The Python and JavaScript samples are built from source here with
//! tether-ext's own build, so componentize-py and componentize-js must be
//! on PATH (`.ci/run` puts them under target/tools); a language whose
//! toolchain is missing is left out, and the run says so.

mod common;

// As the `tether` binary: the compile's allocations are the service's.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::{fmt, measure_batched, quick};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether::extensions::manager::Manager;
use tether::runtime::{CodeTier, ExtensionSpec, Runtime, RuntimeOptions, Tiering};
use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct Sample {
    language: &'static str,
    id: String,
    manifest: String,
    component: Vec<u8>,
}

/// What one sample measured.
#[derive(Default)]
struct Figures {
    size: usize,
    compile_optimized: Duration,
    compile_baseline: Option<Duration>,
    install_to_call: Duration,
    first_call_tier: Option<CodeTier>,
    optimized_after: Duration,
    ready_after_restart: Duration,
    first_call_after_restart: Duration,
    unwarmed_call_after_restart: Duration,
    compiled_after_restart: u64,
    per_call: Duration,
    bare_per_call: Duration,
}

impl Figures {
    fn overhead(&self) -> Duration {
        self.per_call.saturating_sub(self.bare_per_call)
    }

    fn ratio(&self) -> f64 {
        self.per_call.as_secs_f64() / self.bare_per_call.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds `plugins/PLUGIN` as its author would (`tether-ext build`).
fn built(language: &'static str, plugin: &str) -> Result<Sample, String> {
    let dir = workspace().join("plugins").join(plugin);
    let target = workspace()
        .join("target/ext-author-test")
        .join(plugin.replace('/', "-"));
    let wasm = tether_ext::scaffold::build(&dir, Some(&target)).map_err(|e| format!("{e:#}"))?;
    let component = std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let manifest =
        std::fs::read_to_string(dir.join("extension.toml")).map_err(|e| e.to_string())?;
    let parsed: toml::Table = manifest.parse().map_err(|e| format!("{e}"))?;
    let field = |key: &str| {
        parsed
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Ok(Sample {
        language,
        id: format!("{}/{}", field("publisher"), field("name")),
        manifest,
        component,
    })
}

fn samples() -> Vec<Result<Sample, (&'static str, String)>> {
    let rust = std::fs::read(tether_test_artifacts::HELLO)
        .map(|component| Sample {
            language: "Rust",
            id: "Bench/Hello".into(),
            manifest: common::HELLO_MANIFEST.into(),
            component,
        })
        .map_err(|e| ("Rust", e.to_string()));
    let mut all = vec![rust];
    if quick() {
        // `cargo test --benches`: the interpreters take minutes to build
        // and compile in a debug build; `cargo bench` measures them.
        return all;
    }
    for (language, plugin) in [
        ("Python", "python/hello"),
        ("JavaScript", "javascript/hello"),
    ] {
        all.push(built(language, plugin).map_err(|e| (language, e)));
    }
    all
}

/// The options the service's runtime has, uncapped: the CPU share would
/// make a loop of calls measure the governor's waits.
fn service_options(state: &tether::state::StateRoot) -> RuntimeOptions {
    RuntimeOptions {
        cache_dir: Some(state.component_cache()),
        ..Default::default()
    }
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, Duration)> {
    let start = Instant::now();
    let value = f()?;
    Ok((value, start.elapsed()))
}

fn measure_sample(sample: &Sample) -> anyhow::Result<Figures> {
    let mut figures = Figures {
        size: sample.component.len(),
        ..Default::default()
    };
    let scratch = tempfile::tempdir()?;
    let spec = || ExtensionSpec::new(sample.id.clone(), scratch.path().join("data"));

    // Compiles, uncached, once each: what the tiers cost.
    let optimized_only = Runtime::new(RuntimeOptions {
        tiering: Tiering::OptimizedOnly,
        ..Default::default()
    })?;
    figures.compile_optimized = timed(|| optimized_only.load(&sample.component, spec()))?.1;
    drop(optimized_only);
    if sample.component.len() >= tether::runtime::BASELINE_FROM_BYTES {
        let tiered = Runtime::new(RuntimeOptions::default())?;
        let (loaded, took) = timed(|| tiered.load(&sample.component, spec()))?;
        anyhow::ensure!(
            loaded.tier() == CodeTier::Baseline,
            "not loaded on the baseline tier"
        );
        figures.compile_baseline = Some(took);
    }

    // Installed as the service installs it: nothing compiled yet.
    let home = tempfile::tempdir()?;
    let package = common::signed_package(&sample.manifest, &sample.component)?;
    let state = common::trusting_state(home.path(), &common::publisher(&package)?)?;
    let runtime = Arc::new(Runtime::new(service_options(&state))?);
    let manager = Manager::with_runtime(state.clone(), runtime.clone())?;
    let started = Instant::now();
    manager.install(&package, &Default::default())?;
    let first = manager.invoke(&sample.id, "ping", &[])?;
    figures.install_to_call = started.elapsed();
    black_box(first);
    figures.first_call_tier = Some(if runtime.cache_stats().awaiting_optimized_code > 0 {
        CodeTier::Baseline
    } else {
        CodeTier::Optimized
    });
    anyhow::ensure!(
        runtime.settle(Duration::from_secs(600)),
        "the optimized code was not ready within 10 minutes"
    );
    figures.optimized_after = started.elapsed();

    // Calls as the service makes them: a fresh activation each.
    let batch = if sample.component.len() > 1 << 20 {
        20
    } else {
        200
    };
    (figures.per_call, figures.bare_per_call) =
        per_call(runtime.engine(), &sample.component, batch, || {
            black_box(manager.invoke(&sample.id, "ping", &[]).is_ok());
        })?;
    drop(manager);
    drop(runtime);

    // Restarts: a new runtime (the service's own start, the same for any
    // extension, not timed), then what the service does at its start, the
    // extensions' code loaded (ready to call), and the first call. And
    // the first call made before that load is done, which loads it.
    let mut restarts = Vec::new();
    let mut first_calls = Vec::new();
    let mut cold_calls = Vec::new();
    for _ in 0..20 {
        let runtime = Arc::new(Runtime::new(service_options(&state))?);
        let (manager, took) = timed(|| {
            let manager = Manager::with_runtime(state.clone(), runtime.clone())?;
            anyhow::ensure!(
                tether::extensions::manager::warm(&state, &runtime) == 1,
                "its code was not loaded"
            );
            Ok(manager)
        })?;
        restarts.push(took);
        first_calls.push(timed(|| manager.invoke(&sample.id, "ping", &[]))?.1);
        figures.compiled_after_restart += runtime.cache_stats().compiled;
        drop(manager);
        let runtime = Arc::new(Runtime::new(service_options(&state))?);
        cold_calls.push(
            timed(|| {
                Manager::with_runtime(state.clone(), runtime.clone())?.invoke(
                    &sample.id,
                    "ping",
                    &[],
                )
            })?
            .1,
        );
        figures.compiled_after_restart += runtime.cache_stats().compiled;
    }
    figures.first_call_after_restart = common::median(first_calls);
    figures.unwarmed_call_after_restart = common::median(cold_calls);
    figures.ready_after_restart = common::median(restarts);
    Ok(figures)
}

/// A store for bare wasmtime: WASI with nothing granted.
struct Bare {
    wasi: WasiCtx,
    http: wasmtime_wasi_http::WasiHttpCtx,
    hooks: NoRequests,
    table: ResourceTable,
}

/// wasi:http linked, as Tether links it, but sending nothing.
struct NoRequests;

type Sent = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<
                        dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>>
                            + Send,
                    >,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl wasmtime_wasi_http::WasiHttpHooks for NoRequests {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Sent {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl wasmtime_wasi_http::WasiHttpView for Bare {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            hooks: &mut self.hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A call as the service makes it, `service`, against bare wasmtime's
/// instantiate-and-call of `invoke ping`: the same engine and component,
/// WASI and wasi:http linked, the one contract import `ping` uses (`log`)
/// a no-op and every other a trap. Measured in alternating rounds, so that
/// the machine's drift falls on both alike.
fn per_call(
    engine: &wasmtime::Engine,
    component: &[u8],
    batch: usize,
    mut service: impl FnMut(),
) -> anyhow::Result<(Duration, Duration)> {
    let error = |e: wasmtime::Error| anyhow::anyhow!("{e:#}");
    let compiled = Component::new(engine, component).map_err(error)?;
    let mut linker: Linker<Bare> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(error)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).map_err(error)?;
    // The contract's imports, by name (WASI's are matched by semver, which
    // defining unknown imports as traps would shadow).
    for (name, item) in compiled.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !name.starts_with("tether:") {
            continue;
        }
        let mut host = linker.instance(name).map_err(error)?;
        for (function, item) in instance.exports(engine) {
            if !matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                continue;
            }
            if function == "log" {
                host.func_new(function, |_, _, _, _| Ok(()))
                    .map_err(error)?;
            } else {
                host.func_new(function, |_, _, _, _| {
                    Err(wasmtime::Error::msg("not provided by the bare benchmark"))
                })
                .map_err(error)?;
            }
        }
    }
    let contract = tether::version::CONTRACT_VERSION;
    let pre = linker.instantiate_pre(&compiled).map_err(error)?;
    let interface = format!("tether:extension/lifecycle@{contract}");
    let (_, lifecycle) = compiled
        .get_export(None, &interface)
        .ok_or_else(|| anyhow::anyhow!("no {interface} export"))?;
    let (_, invoke) = compiled
        .get_export(Some(&lifecycle), "invoke")
        .ok_or_else(|| anyhow::anyhow!("no invoke export"))?;
    let args = [Val::String("ping".into()), Val::List(Vec::new())];
    let call = || -> anyhow::Result<()> {
        let mut store = Store::new(
            engine,
            Bare {
                wasi: WasiCtx::builder().build(),
                http: wasmtime_wasi_http::WasiHttpCtx::new(),
                hooks: NoRequests,
                table: ResourceTable::new(),
            },
        );
        store.set_epoch_deadline(1_000_000);
        let instance = pre.instantiate(&mut store).map_err(error)?;
        let func = instance
            .get_func(&mut store, invoke)
            .ok_or_else(|| anyhow::anyhow!("invoke is not a function"))?;
        let mut results = [Val::Bool(false)];
        func.call(&mut store, &args, &mut results).map_err(error)?;
        Ok(())
    };
    call()?;
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        ours.push(measure_batched(5, batch, &mut service));
        bare.push(measure_batched(5, batch, || {
            black_box(call().is_ok());
        }));
    }
    Ok((common::median(ours), common::median(bare)))
}

fn main() -> anyhow::Result<()> {
    let mut measured: Vec<(&str, Figures)> = Vec::new();
    let mut skipped = Vec::new();
    for sample in samples() {
        match sample {
            Ok(sample) => {
                eprintln!(
                    "measuring {} ({} KB)…",
                    sample.language,
                    sample.component.len() / 1024
                );
                measured.push((sample.language, measure_sample(&sample)?));
            }
            Err((language, why)) => skipped.push(format!("{language} left out: {why}")),
        }
    }
    println!();
    println!(
        "hello in each language, wasmtime {}, {} CPUs",
        tether::version::WASMTIME_VERSION,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print!("{:<36}", "measure");
    for (language, _) in &measured {
        print!(" {language:>12}");
    }
    println!("  target");
    let row = |name: &str, target: &str, cell: &dyn Fn(&Figures) -> String| {
        print!("{name:<36}");
        for (_, figures) in &measured {
            print!(" {:>12}", cell(figures));
        }
        println!("  {target}");
    };
    row("component", "", &|f| format!("{} KB", f.size / 1024));
    row("compile, Cranelift (optimized)", "", &|f| {
        fmt(f.compile_optimized)
    });
    row("compile, Winch (baseline)", "", &|f| {
        f.compile_baseline.map_or("-".into(), fmt)
    });
    row("install → first call", "≤ 2 s", &|f| {
        fmt(f.install_to_call)
    });
    row("  first call ran on", "", &|f| match f.first_call_tier {
        Some(CodeTier::Baseline) => "Winch".into(),
        Some(CodeTier::Optimized) => "Cranelift".into(),
        None => "-".into(),
    });
    row("  optimized code after", "", &|f| fmt(f.optimized_after));
    row("ready after a restart (code loaded)", "≤ 5 ms", &|f| {
        fmt(f.ready_after_restart)
    });
    row("  then the first call", "", &|f| {
        fmt(f.first_call_after_restart)
    });
    row("  a first call before it is loaded", "", &|f| {
        fmt(f.unwarmed_call_after_restart)
    });
    row("  compiled at restarts", "0", &|f| {
        f.compiled_after_restart.to_string()
    });
    row("call as the service makes it", "", &|f| fmt(f.per_call));
    row("bare wasmtime instantiate + call", "", &|f| {
        fmt(f.bare_per_call)
    });
    let rust_ratio = measured
        .iter()
        .find(|(l, _)| *l == "Rust")
        .map(|(_, f)| f.ratio());
    row(
        "  service ÷ bare (Tether's overhead)",
        "≤ 2x Rust's",
        &|f| match rust_ratio {
            Some(rust) if rust > 0.0 => format!("{:.2}x {:.1}x", f.ratio(), f.ratio() / rust),
            _ => format!("{:.2}x", f.ratio()),
        },
    );
    row("  service − bare", "", &|f| fmt(f.overhead()));
    for line in skipped {
        println!("{line}");
    }
    Ok(())
}
