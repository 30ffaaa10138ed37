//! Every hostile fixture is contained: the expected error, within the
//! deadline, bounded log output, and afterwards the same runtime still runs
//! `hello` correctly.

use crate::support::*;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use tether::runtime::{
    Call, GuestErrorKind, Limits, MAX_LOG_BYTES_PER_CALL, MAX_LOG_LINES_PER_CALL, MAX_OUTPUT_BYTES,
};
use tether_test_artifacts as artifacts;

fn limits(memory_mib: u64, timeout_ms: u64) -> Limits {
    Limits::new(memory_mib, Duration::from_millis(timeout_ms))
}

fn invoke(command: &str, args: &[&str]) -> Call {
    Call::Invoke {
        command: command.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn an_endless_loop_is_stopped_at_its_deadline() -> TestResult {
    let runtime = runtime();
    let data = tempfile::tempdir()?;
    let ext = load(
        runtime,
        artifacts::FIXTURE_SPIN,
        limits(64, 300),
        data.path(),
    )?;
    let started = Instant::now();
    let err = ext.call(Call::Enable).expect_err("spin never returns");
    let elapsed = started.elapsed();
    assert!(matches!(err.kind, GuestErrorKind::Timeout { .. }), "{err}");
    assert!(
        elapsed >= Duration::from_millis(300),
        "stopped early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "stopped late: {elapsed:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("fixture_spin") && text.contains("enable") && text.contains("300 ms"),
        "{text}"
    );
    assert_hello_still_works(runtime)
}

#[test]
fn growing_memory_past_the_limit_is_reported_as_the_memory_limit() -> TestResult {
    let runtime = runtime();
    let data = tempfile::tempdir()?;
    let ext = load(
        runtime,
        artifacts::FIXTURE_MEMORY_HOG,
        limits(32, 10_000),
        data.path(),
    )?;
    let started = Instant::now();
    let err = ext.call(Call::Enable).expect_err("the hog cannot fit");
    assert!(
        matches!(err.kind, GuestErrorKind::MemoryLimit { limit_bytes } if limit_bytes == 32 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("memory limit of 32 MiB"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_hello_still_works(runtime)
}

#[test]
fn endless_recursion_is_a_stack_overflow() -> TestResult {
    let runtime = runtime();
    let data = tempfile::tempdir()?;
    let ext = load(
        runtime,
        artifacts::FIXTURE_STACK_OVERFLOW,
        Limits::default(),
        data.path(),
    )?;
    let err = ext.call(Call::Enable).expect_err("recursion never ends");
    assert!(matches!(err.kind, GuestErrorKind::StackOverflow), "{err}");
    assert_hello_still_works(runtime)
}

#[test]
fn a_panic_is_reported_with_its_message() -> TestResult {
    let runtime = runtime();
    let data = tempfile::tempdir()?;
    let ext = load(
        runtime,
        artifacts::FIXTURE_PANIC,
        Limits::default(),
        data.path(),
    )?;
    let mut activation = ext.activate();
    let err = activation.call(Call::Enable).expect_err("it panics");
    match &err.kind {
        GuestErrorKind::Panic { message: Some(m) } => {
            assert!(m.contains("fixture panic: the extension gave up"), "{m}")
        }
        other => panic!("expected a panic, got {other}"),
    }
    // The trapped instance is discarded; the next call starts afresh and
    // meets the same panic rather than a poisoned instance.
    let again = activation.call(Call::Enable).expect_err("it panics again");
    assert!(
        matches!(again.kind, GuestErrorKind::Panic { .. }),
        "{again}"
    );
    assert_hello_still_works(runtime)
}

#[test]
fn the_filesystem_is_out_of_reach() -> TestResult {
    let runtime = runtime();
    let data = tempfile::tempdir()?;
    let ext = load(
        runtime,
        artifacts::FIXTURE_FS_ESCAPE,
        Limits::default(),
        data.path(),
    )?;
    for path in ["/etc/passwd", "../../etc/passwd", "etc/passwd"] {
        let err = ext
            .call(invoke("read", &[path]))
            .expect_err("no preopened directories");
        match &err.kind {
            GuestErrorKind::Returned { code, message } => {
                assert_eq!(code, "io");
                assert!(!message.contains("root:"), "{message}");
            }
            other => panic!("expected the guest's own io error, got {other}"),
        }
    }
    assert_hello_still_works(runtime)
}

#[test]
fn no_socket_can_be_opened() -> TestResult {
    let runtime = runtime();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?.to_string();
    let data = tempfile::tempdir()?;
    let ext = load(
        runtime,
        artifacts::FIXTURE_SOCKET,
        Limits::default(),
        data.path(),
    )?;
    let err = ext
        .call(invoke("connect", &[&addr]))
        .expect_err("sockets are denied");
    assert!(matches!(err.kind, GuestErrorKind::Returned { .. }), "{err}");
    assert!(listener.accept().is_err(), "the listener saw a connection");
    assert_hello_still_works(runtime)
}

#[test]
fn outbound_http_to_an_undeclared_host_is_denied_before_connecting() -> TestResult {
    let runtime = runtime();
    let server = LoopbackHttp::start("secret")?;
    let data = tempfile::tempdir()?;
    let ext = load(
        runtime,
        artifacts::FIXTURE_UNDECLARED_HTTP,
        Limits::default(),
        data.path(),
    )?;
    let err = ext
        .call(invoke("get", &[&server.url()]))
        .expect_err("nothing is declared");
    match &err.kind {
        GuestErrorKind::Returned { code, message } => {
            assert_eq!(code, "denied");
            assert!(message.contains("not allowed"), "{message}");
        }
        other => panic!("expected denied, got {other}"),
    }
    assert_eq!(server.seen(), 0, "the host connected anyway");
    assert_hello_still_works(runtime)
}

#[test]
fn a_huge_result_is_refused() -> TestResult {
    let runtime = runtime();
    let data = tempfile::tempdir()?;
    // 100 MB cannot even be built inside the default memory limit...
    let ext = load(
        runtime,
        artifacts::FIXTURE_HUGE_OUTPUT,
        Limits::default(),
        data.path(),
    )?;
    let err = ext.call(invoke("big", &["100"])).expect_err("100 MB");
    assert!(
        matches!(err.kind, GuestErrorKind::MemoryLimit { .. }),
        "{err}"
    );
    // ...and with room to build it, the host refuses to take it.
    let roomy = load(
        runtime,
        artifacts::FIXTURE_HUGE_OUTPUT,
        limits(512, 10_000),
        data.path(),
    )?;
    let err = roomy.call(invoke("big", &["100"])).expect_err("100 MB");
    match err.kind {
        GuestErrorKind::OutputTooLarge { size, limit } => {
            assert_eq!(size, 100 << 20);
            assert_eq!(limit, MAX_OUTPUT_BYTES);
        }
        other => panic!("expected output-too-large, got {other}"),
    }
    assert_hello_still_works(runtime)
}

#[test]
fn log_spam_is_bounded() -> TestResult {
    let runtime = runtime();
    let data = tempfile::tempdir()?;
    let ext = load(
        runtime,
        artifacts::FIXTURE_LOG_SPAM,
        limits(64, 60_000),
        data.path(),
    )?;
    let outcome = ext.call(Call::Enable)?;
    assert!(
        outcome.logs.len() <= MAX_LOG_LINES_PER_CALL + 1,
        "{} lines kept",
        outcome.logs.len()
    );
    let kept: usize = outcome.logs.iter().map(|r| r.message.len()).sum();
    assert!(kept <= MAX_LOG_BYTES_PER_CALL + 256, "{kept} bytes kept");
    // 50,000 iterations, each writing three lines.
    assert_eq!(outcome.dropped_logs + outcome.logs.len() - 1, 150_000);
    let last = outcome
        .logs
        .last()
        .map(|r| r.message.as_str())
        .unwrap_or_default();
    assert!(last.contains("more log lines were dropped"), "{last}");
    assert_hello_still_works(runtime)
}

#[test]
fn a_file_that_is_not_a_component_is_refused_clearly() -> TestResult {
    let runtime = runtime();
    let data = tempfile::tempdir()?;
    let bogus = data.path().join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm\x01\0\0\0garbage")?;
    let err = match load(
        runtime,
        &bogus.to_string_lossy(),
        Limits::default(),
        data.path(),
    ) {
        Ok(_) => panic!("garbage loaded"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("not a valid WebAssembly component"), "{err}");
    assert_hello_still_works(runtime)
}

#[test]
fn the_cpu_limit_throttles_a_busy_guest() -> TestResult {
    let runtime = tether::runtime::Runtime::new(tether::runtime::RuntimeOptions {
        cpu_percent: Some(10),
        ..Default::default()
    })?;
    let data = tempfile::tempdir()?;
    let ext = load(
        &runtime,
        artifacts::FIXTURE_SPIN,
        limits(64, 1000),
        data.path(),
    )?;
    let (cpu_before, started) = (tether::runtime::thread_cpu_time(), Instant::now());
    let err = ext.call(Call::Enable).expect_err("spin never returns");
    let (cpu, wall) = (
        tether::runtime::thread_cpu_time() - cpu_before,
        started.elapsed(),
    );
    assert!(matches!(err.kind, GuestErrorKind::Timeout { .. }), "{err}");
    assert!(wall >= Duration::from_millis(1000), "{wall:?}");
    // 10% of one CPU over a second is about 100 ms; allow for ticks.
    assert!(
        cpu <= Duration::from_millis(400),
        "the guest used {cpu:?} of CPU in {wall:?}"
    );
    assert_hello_still_works(&runtime)
}

#[test]
fn a_guest_blocked_in_wasi_ends_at_its_deadline() -> TestResult {
    let runtime = runtime();
    let data = tempfile::tempdir()?;
    let ext = load(
        runtime,
        artifacts::FIXTURE_SLEEPER,
        limits(64, 1_000),
        data.path(),
    )?;
    // A sleep (one blocking WASI wait) and a poll loop (many short ones).
    for command in ["sleep", "poll"] {
        let started = Instant::now();
        let err = ext
            .call(invoke(command, &["8"]))
            .expect_err("it sleeps past its deadline");
        let elapsed = started.elapsed();
        assert!(
            matches!(err.kind, GuestErrorKind::Timeout { .. }),
            "{command}: {err}"
        );
        assert!(
            elapsed >= Duration::from_millis(1_000),
            "{command}: early, {elapsed:?}"
        );
        // The deadline plus a tick, and slack for a busy two-core machine.
        assert!(
            elapsed < Duration::from_millis(1_500),
            "{command}: late, {elapsed:?}"
        );
    }
    // A short sleep within the deadline is only a sleep.
    let out = ext.call(invoke("sleep", &["0"]))?;
    assert_eq!(out.output.as_deref(), Some("slept 0 s"));
    assert_hello_still_works(runtime)
}
