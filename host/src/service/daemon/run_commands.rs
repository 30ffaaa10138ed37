//! The service's side of run commands: one thread long-polls the agent
//! service for runs waiting for this machine (so a run starts within a
//! second or two of its PUT, not at the next heartbeat), says each has
//! started, runs it under the extensions' one owner, and reports how it
//! ended.

use super::{Service, lock};
use crate::cloud::agent::{self, retry_after};
use crate::extensions::run_command;
use crate::lifecycle::ConnectedMachine;
use crate::service::backoff::{Backoff, jitter};
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use tether_cloud_api::run_command::RunCommandReport;

/// How long one poll is held open by the agent service.
const POLL_WAIT: Duration = Duration::from_secs(25);
/// How often a machine that is not connected looks again.
const IDLE: Duration = Duration::from_secs(5);

impl Service {
    pub(super) fn run_commands_worker(self: &Arc<Self>) -> Result<()> {
        let service = self.clone();
        std::thread::Builder::new()
            .name("tether-runcommands".into())
            .spawn(move || service.poll_run_commands())
            .context("could not start the run-command thread")?;
        Ok(())
    }

    fn poll_run_commands(&self) {
        let mut backoff = Backoff::for_interval(Duration::from_secs(30));
        loop {
            let pause = match self.poll_run_commands_once() {
                Ok(true) => {
                    backoff.succeeded();
                    Duration::ZERO
                }
                Ok(false) => IDLE,
                Err(e) => {
                    let delay = backoff.failed(retry_after(&e), jitter());
                    tracing::warn!(
                        "could not ask for run commands, next try in {:.1}s: {e:#}",
                        delay.as_secs_f64()
                    );
                    delay
                }
            };
            std::thread::sleep(pause);
        }
    }

    /// One poll and the runs it brought; `false` when there is nothing to
    /// poll (not connected).
    fn poll_run_commands_once(&self) -> Result<bool> {
        let settings = self.settings();
        let Some(machine) = ConnectedMachine::load(&self.state, &settings)? else {
            return Ok(false);
        };
        let registration = &machine.registration;
        let audience = registration.endpoints.agent_audience();
        let token = self.tokens.get(&machine.identity(), &audience)?;
        let send = |name: &str, report: &RunCommandReport| {
            agent::report_run_command(
                &registration.endpoints,
                &machine.proxy,
                registration.ca_pem(),
                &token.access_token,
                name,
                report,
            )
        };
        let pending = agent::pending_run_commands(
            &registration.endpoints,
            &machine.proxy,
            registration.ca_pem(),
            &token.access_token,
            POLL_WAIT,
        )?;
        for run in pending {
            // Not started until the cloud knows it started: a run whose
            // start could not be told stays pending and comes again.
            send(&run.name, &run_command::started(&run))?;
            let report = {
                let extensions = lock(&self.extensions);
                run_command::run(&extensions, &self.settings(), &run)
            };
            let mut tries = 0;
            while let Err(e) = send(&run.name, &report) {
                tries += 1;
                if tries == 3 {
                    tracing::error!(
                        "the outcome of run command {} could not be reported: {e:#}",
                        run.name
                    );
                    break;
                }
                std::thread::sleep(Duration::from_secs(tries));
            }
        }
        Ok(true)
    }
}
