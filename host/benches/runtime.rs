//! `cargo bench`: Tether's runtime against bare wasmtime, side by side, in
//! one run, on the same component (`hello`). Prints a table of medians and
//! ratios. Targets (issue #2): activation within 1.5x of bare wasmtime,
//! cached load at least 100x faster than compile, invoke round trip with
//! one host call under 1 µs; (issue #11) a call as the service makes it,
//! through the manager on an installed signed package, within 1.5x of bare
//! wasmtime's instantiate-and-call.

mod common;

use common::{fmt, measure, measure_batched, quick};
use std::hint::black_box;
use std::time::Duration;
use tether::runtime::{AllocatorChoice, Call, ExtensionSpec, Runtime, RuntimeOptions};
use wasmtime::Store;
use wasmtime::component::{Component, Linker, Val};

/// Bare wasmtime's view of `component`: compiled on `engine`, every
/// import a trap but, with `log`, the one `invoke ping` calls as a no-op.
fn bare_pre(
    engine: &wasmtime::Engine,
    component: &[u8],
    log: bool,
) -> anyhow::Result<(Component, wasmtime::component::InstancePre<()>)> {
    let compiled = Component::new(engine, component).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut linker: Linker<()> = Linker::new(engine);
    if log {
        linker
            .instance(&format!(
                "tether:extension/host@{}",
                tether::version::CONTRACT_VERSION
            ))
            .and_then(|mut host| host.func_new("log", |_, _, _, _| Ok(())))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    linker
        .define_unknown_imports_as_traps(&compiled)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let pre = linker
        .instantiate_pre(&compiled)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((compiled, pre))
}

fn main() -> anyhow::Result<()> {
    let scale = if quick() { 10 } else { 1 };
    let component = std::fs::read(tether_test_artifacts::HELLO)?;
    let home = tempfile::tempdir()?;

    let mut rows: Vec<(String, Duration, Duration, String)> = Vec::new();
    for (label, allocator) in [
        ("pooling", AllocatorChoice::Auto),
        ("on-demand", AllocatorChoice::OnDemand),
    ] {
        // The default CPU share, as installed extensions run with it.
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: Some(home.path().join(label)),
            allocator,
            cpu_percent: Some(5),
            ..Default::default()
        })?;
        if allocator == AllocatorChoice::Auto && !runtime.is_pooling() {
            println!("(pooling allocator unavailable here; its row repeats on-demand)");
        }
        let engine = runtime.engine().clone();

        // Bare wasmtime: same engine, same compiled component, a store with
        // no data, imports stubbed; instantiate from an InstancePre, drop.
        let (_, pre) = bare_pre(&engine, &component, false)?;
        let bare = measure_batched(200 / scale, 50, || {
            let mut store = Store::new(&engine, ());
            store.set_epoch_deadline(1_000_000);
            let instance = pre.instantiate(&mut store);
            black_box(instance.is_ok());
        });

        // Tether: the whole activation path (store, limits, WASI context
        // that inherits nothing, host state, instantiate), then drop.
        let ext = runtime.load(
            &component,
            ExtensionSpec::new("hello", home.path().join("data")),
        )?;
        let tether = measure_batched(200 / scale, 50, || {
            let mut activation = ext.activate();
            black_box(activation.prepare().is_ok());
        });
        rows.push((
            format!("activate ({label})"),
            bare,
            tether,
            "target ≤ 1.5x".into(),
        ));

        if allocator == AllocatorChoice::Auto {
            // Invoke round trip with one host call (`ping` logs once), on a
            // live activation.
            let mut activation = ext.activate();
            activation.prepare().map_err(|e| anyhow::anyhow!("{e}"))?;
            let ping = Call::Invoke {
                command: "ping".into(),
                args: Vec::new(),
            };
            let invoke = measure_batched(200 / scale, 2000, || {
                black_box(activation.call(ping.clone()).is_ok());
            });
            rows.push((
                "invoke + 1 host call".into(),
                Duration::ZERO,
                invoke,
                "target < 1 µs".into(),
            ));

            // Compile (no cache) vs load from the cache.
            let uncached = Runtime::new(RuntimeOptions::default())?;
            let compile = measure(20 / scale.min(10) + 2, 1, || {
                black_box(
                    uncached
                        .load(&component, ExtensionSpec::new("hello", home.path()))
                        .is_ok(),
                );
            });
            let cached = measure(200 / scale, 5, || {
                // From the disk cache each time, as a new process loads.
                runtime.forget_compiled();
                black_box(
                    runtime
                        .load(&component, ExtensionSpec::new("hello", home.path()))
                        .is_ok(),
                );
            });
            rows.push((
                "compile vs cached load".into(),
                compile,
                cached,
                "target ≥ 100x faster".into(),
            ));
            let kept = measure(200 / scale, 5, || {
                black_box(
                    runtime
                        .load(&component, ExtensionSpec::new("hello", home.path()))
                        .is_ok(),
                );
            });
            rows.push((
                "cached vs kept-in-memory load".into(),
                cached,
                kept,
                "faster: the service's later calls".into(),
            ));
        }
    }

    // A call as the service makes it: through the manager (the loaded
    // extension it keeps), a fresh activation, `invoke ping` (one host
    // call). Bare wasmtime: instantiate from an InstancePre, call the same
    // export, with the one import it uses (`log`) a no-op.
    {
        let manager = common::installed(
            &home.path().join("service"),
            common::HELLO_MANIFEST,
            &component,
        )?;
        let runtime = Runtime::new(RuntimeOptions::default())?;
        let engine = runtime.engine().clone();
        let (compiled, pre) = bare_pre(&engine, &component, true)?;
        let interface = format!(
            "tether:extension/lifecycle@{}",
            tether::version::CONTRACT_VERSION
        );
        let (_, lifecycle) = compiled
            .get_export(None, &interface)
            .ok_or_else(|| anyhow::anyhow!("hello exports no {interface}"))?;
        let (_, invoke) = compiled
            .get_export(Some(&lifecycle), "invoke")
            .ok_or_else(|| anyhow::anyhow!("hello exports no invoke"))?;
        let args = [Val::String("ping".into()), Val::List(Vec::new())];
        let bare = measure_batched(200 / scale, 200, || {
            let mut store = Store::new(&engine, ());
            store.set_epoch_deadline(1_000_000);
            let Ok(instance) = pre.instantiate(&mut store) else {
                return;
            };
            let Some(func) = instance.get_func(&mut store, invoke) else {
                return;
            };
            let mut results = [Val::Bool(false)];
            black_box(func.call(&mut store, &args, &mut results).is_ok());
        });
        let through_manager = measure_batched(200 / scale, 200, || {
            black_box(manager.invoke("Bench/Hello", "ping", &[]).is_ok());
        });
        rows.push((
            "service call vs bare instantiate+call".into(),
            bare,
            through_manager,
            "target ≤ 1.5x".into(),
        ));
    }

    println!();
    println!(
        "component: hello ({} KB), wasmtime {}",
        component.len() / 1024,
        tether::version::WASMTIME_VERSION
    );
    println!(
        "{:<38} {:>12} {:>12} {:>9}",
        "measure", "baseline", "tether", "ratio"
    );
    for (name, base, tether, target) in rows {
        let (base_text, ratio) = if base.is_zero() {
            ("-".to_string(), "-".to_string())
        } else if target.contains("faster") {
            (
                fmt(base),
                format!("{:.0}x", base.as_secs_f64() / tether.as_secs_f64()),
            )
        } else {
            (
                fmt(base),
                format!("{:.2}x", tether.as_secs_f64() / base.as_secs_f64()),
            )
        };
        println!(
            "{:<38} {:>12} {:>12} {:>9}  {}",
            name,
            base_text,
            fmt(tether),
            ratio,
            target
        );
    }
    Ok(())
}
