//! The access log: sign-ins and refused API calls are recorded without making the request wait
//! (a full queue drops the attempt and counts it), written in batches by a background task that
//! `serve` runs, counted by channel and outcome for `/metrics` (without names), and listed per
//! tenant for anomaly detection. An attempt that belongs to no tenant (an unknown token) is
//! counted and written to the log, not stored: nobody could list it, and anyone could send
//! them. Attempts are kept [`KEEP_DAYS`] days. A crash loses at most the attempts of the last
//! moment; a shutdown writes the queue first. Changes to orders and the audit chain do not go
//! this way.

use super::access::require_role;
use super::{ApprovalError, Approvals};
use crate::domain::access_attempt::{AccessAttempt, AttemptOutcome, Channel};
use crate::domain::actor::roles;
use crate::domain::directory::Principal;
use crate::store::access_attempts;
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Attempts waiting to be written at most; a flood beyond it is counted, not stored.
const QUEUE: usize = 10_000;
/// Attempts written per change.
const BATCH: usize = 500;
/// Most attempts one listing returns.
pub const MAX_LISTED: usize = 1_000;
/// Days attempts are kept.
pub const KEEP_DAYS: i64 = 90;
/// How often old attempts are removed.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3_600);

/// The queue of attempts and their counters.
pub struct AccessLog {
    tx: mpsc::Sender<AccessAttempt>,
    rx: Mutex<Option<mpsc::Receiver<AccessAttempt>>>,
    counts: [[AtomicU64; AttemptOutcome::ALL.len()]; Channel::ALL.len()],
    dropped: AtomicU64,
    stop: tokio::sync::Notify,
}

impl Default for AccessLog {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        AccessLog {
            tx,
            rx: Mutex::new(Some(rx)),
            counts: Default::default(),
            dropped: AtomicU64::new(0),
            stop: tokio::sync::Notify::new(),
        }
    }
}

fn index<T: PartialEq>(all: &[T], x: &T) -> usize {
    all.iter().position(|a| a == x).unwrap_or(0)
}

impl AccessLog {
    /// Records an attempt (counted at once, stored by the writer task).
    pub fn record(&self, attempt: AccessAttempt) {
        let (c, o) = (index(&Channel::ALL, &attempt.channel), index(&AttemptOutcome::ALL, &attempt.outcome));
        self.counts[c][o].fetch_add(1, Ordering::Relaxed);
        if attempt.tenant_id.is_none() {
            tracing::info!(
                target: "greenlight::access",
                address = %attempt.address,
                outcome = attempt.outcome.as_str(),
                reason = %attempt.reason,
                "refused"
            );
            return;
        }
        if self.tx.try_send(attempt).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Attempts so far by channel and outcome.
    pub fn counts(&self) -> Vec<(Channel, AttemptOutcome, u64)> {
        let mut out = Vec::new();
        for (c, channel) in Channel::ALL.into_iter().enumerate() {
            for (o, outcome) in AttemptOutcome::ALL.into_iter().enumerate() {
                out.push((channel, outcome, self.counts[c][o].load(Ordering::Relaxed)));
            }
        }
        out
    }

    /// Attempts counted but not stored (the queue was full).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Asks the writer task to write what is queued and end (at shutdown).
    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

impl Approvals {
    /// The access log.
    pub fn access_log(&self) -> &AccessLog {
        &self.access_log
    }

    /// Writes recorded attempts in batches until [`AccessLog::stop`] (then what is queued) or
    /// the process ends; removes attempts older than [`KEEP_DAYS`] once an hour. `serve` runs it.
    pub async fn run_access_log(self) {
        let taken = self.access_log.rx.lock().ok().and_then(|mut r| r.take());
        let Some(mut rx) = taken else { return };
        let mut purged = std::time::Instant::now() - PURGE_EVERY;
        loop {
            let stopping = tokio::select! {
                first = rx.recv() => match first {
                    Some(a) => { self.write_attempts(a, &mut rx).await; false }
                    None => true,
                },
                () = self.access_log.stop.notified() => true,
            };
            if stopping {
                while let Ok(a) = rx.try_recv() {
                    self.write_attempts(a, &mut rx).await;
                }
                return;
            }
            if purged.elapsed() >= PURGE_EVERY {
                purged = std::time::Instant::now();
                let before = Utc::now() - chrono::TimeDelta::days(KEEP_DAYS);
                if let Err(e) = self.store.write(move |c| access_attempts::purge_before(c, before)).await {
                    tracing::warn!(error = %e, "old access attempts could not be removed");
                }
            }
        }
    }

    /// Writes `first` and up to a batch more that are waiting, in one change.
    async fn write_attempts(&self, first: AccessAttempt, rx: &mut mpsc::Receiver<AccessAttempt>) {
        let mut batch = Vec::with_capacity(BATCH);
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let n = batch.len();
        if let Err(e) = self.store.write(move |c| access_attempts::insert_many(c, &batch)).await {
            tracing::warn!(error = %e, "{n} access attempts could not be stored");
        }
    }

    /// The tenant's access attempts in `[from, to)`, newest first (admin, auditor).
    pub async fn access_attempts(
        &self,
        p: &Principal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        outcome: Option<AttemptOutcome>,
        limit: usize,
    ) -> Result<Vec<AccessAttempt>, ApprovalError> {
        require_role(p, &[roles::ADMIN, roles::AUDITOR], "reading access attempts")?;
        let tenant_id = p.tenant.id.clone();
        let limit = limit.clamp(1, MAX_LISTED);
        Ok(self.store.read(move |c| access_attempts::list(c, &tenant_id, from, to, outcome, limit)).await?)
    }
}
