//! The service's schedule runner: one thread runs every installed
//! extension's `[[schedule]]` entries when due, one run at a time (so no
//! two runs of one extension ever overlap), each under the extensions' one
//! owner and within the extension's call deadline and the CPU governor.
//! A run of a cloud-assigned extension is reported to the cloud as its
//! status (the manager queues the report, a reconcile pass sends it),
//! which the extension resource's instance view shows.

use super::{Service, Wake, lock};
use crate::extensions::manager::{installed, parse_id};
use crate::extensions::schedule::{first_delay, next_delay, random_unit};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the runner looks for extensions installed or removed since.
const RESCAN: Duration = Duration::from_secs(2);

/// One entry: the extension (lower-cased id), its index, and what it runs
/// (so an update that changes the entry schedules it afresh).
type EntryKey = (String, usize, String);

fn epoch(at: Instant) -> u64 {
    crate::util::now() + at.saturating_duration_since(Instant::now()).as_secs()
}

impl Service {
    pub(super) fn schedules_worker(self: &Arc<Self>) -> Result<()> {
        let service = self.clone();
        std::thread::Builder::new()
            .name("tether-schedules".into())
            .spawn(move || service.run_schedules())
            .context("could not start the schedule thread")?;
        Ok(())
    }

    fn run_schedules(&self) {
        let mut due: HashMap<EntryKey, (Instant, Duration)> = HashMap::new();
        loop {
            let now = Instant::now();
            let mut present = HashSet::new();
            for record in installed(&self.state) {
                let Ok(id) = parse_id(&record.id) else {
                    continue;
                };
                for (index, entry) in record.granted.schedules.iter().enumerate() {
                    let key = (
                        id.key(),
                        index,
                        format!("{} every {}", entry.label(), entry.every),
                    );
                    present.insert(key.clone());
                    if due.contains_key(&key) {
                        continue;
                    }
                    let every = entry.interval();
                    let at = now + first_delay(every, random_unit());
                    if let Err(e) = lock(&self.extensions).schedule_next(&id, index, epoch(at)) {
                        tracing::warn!("could not record {}'s next run: {e:#}", record.id);
                    }
                    due.insert(key, (at, every));
                }
            }
            due.retain(|key, _| present.contains(key));
            let ready: Vec<EntryKey> = due
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|(key, _)| key.clone())
                .collect();
            for key in ready {
                let Some((at, every)) = due.get_mut(&key) else {
                    continue;
                };
                *at = Instant::now() + next_delay(*every, random_unit());
                let next = epoch(*at);
                self.run_one_scheduled(&key, next);
            }
            let wake_at = due
                .values()
                .map(|(at, _)| *at)
                .min()
                .unwrap_or(now + RESCAN)
                .min(Instant::now() + RESCAN);
            std::thread::sleep(wake_at.saturating_duration_since(Instant::now()));
        }
    }

    fn run_one_scheduled(&self, (key, index, _): &EntryKey, next: u64) {
        let Ok(id) = parse_id(key) else {
            return;
        };
        let result = lock(&self.extensions).run_scheduled(&id, *index, next);
        let record = match result {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("scheduled run of {id} could not be recorded: {e:#}");
                return;
            }
        };
        let Some(run) = record.runs.get(*index) else {
            return;
        };
        tracing::info!(
            "scheduled {} `{}`: {} {}",
            record.id,
            run.schedule,
            run.result.as_deref().unwrap_or_default(),
            run.message
        );
        // The manager queued the run's report; the reconcile pass sends it.
        if record.cloud.is_some() && run.result.as_deref() != Some("skipped") {
            self.wake(Wake::Reconcile);
        }
    }
}
