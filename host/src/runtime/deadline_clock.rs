//! WASI's monotonic clock with every wait clamped to the call's deadline.
//! A guest blocked in a host call (`std::thread::sleep` is
//! `subscribe-duration` then `pollable.block`) cannot be interrupted by
//! epochs; so no pollable it makes outlives the call: it wakes at the
//! deadline, re-enters wasm, and the epoch check ends the call there.
//! Every other way to wait in WASI (streams, sockets, files) has nothing
//! to wait for in Tether's sandbox.

use super::host_api::HostState;
use std::time::Instant;
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::{
    self, Duration, Instant as WasiInstant,
};

impl HostState {
    /// Nanoseconds left in the current call.
    fn nanos_left(&self) -> u64 {
        let left = self.deadline.saturating_duration_since(Instant::now());
        u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl monotonic_clock::Host for HostState {
    fn now(&mut self) -> wasmtime::Result<WasiInstant> {
        monotonic_clock::Host::now(&mut self.clocks())
    }

    fn resolution(&mut self) -> wasmtime::Result<Duration> {
        monotonic_clock::Host::resolution(&mut self.clocks())
    }

    fn subscribe_duration(
        &mut self,
        duration: Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let clamped = duration.min(self.nanos_left());
        monotonic_clock::Host::subscribe_duration(&mut self.clocks(), clamped)
    }

    fn subscribe_instant(&mut self, when: WasiInstant) -> wasmtime::Result<Resource<DynPollable>> {
        let now = monotonic_clock::Host::now(&mut self.clocks())?;
        let clamped = when.saturating_sub(now).min(self.nanos_left());
        monotonic_clock::Host::subscribe_duration(&mut self.clocks(), clamped)
    }
}

/// Replaces WASI's monotonic clock in `linker` (after WASI was linked).
pub(crate) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let linked = monotonic_clock::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s);
    linker.allow_shadowing(false);
    linked.map_err(|e| anyhow::anyhow!("could not link the deadline-bound clock: {e}"))
}
