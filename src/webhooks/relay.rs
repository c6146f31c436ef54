//! The outbox relay: claims due deliveries under a lease, sends them signed, records
//! every attempt and schedules retries. Several gateway processes may run a relay on
//! one PostgreSQL database; leases (claimed with SKIP LOCKED, re-checked right before
//! sending) keep them from sending the same attempt twice.
//!
//! Leases are short and renewed while this process holds the delivery, so a live
//! relay never loses one mid-send, and a crashed relay's deliveries (`kill -9`) are
//! taken over within `LEASE_SECONDS` instead of waiting out a long lease.
//!
//! The per-delivery bookkeeping (the lease check before sending, the attempt record
//! after) is group-committed: each has one loop that writes, in one statement or
//! transaction, every request that queued while it wrote the previous batch. Under load
//! that turns thousands of tiny writes on the single SQLite writer into a few large
//! ones; when idle, a batch is one request and nothing waits.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use super::{retry, signing, ssrf};
use crate::clock::Clock;
use crate::domain::{Id, Timestamp};
use crate::store::Db;
use crate::store::webhooks::{self as store, Attempt, AttemptResult, DueDelivery};

/// Longer than a send (10 s) so one missed renewal is harmless.
const LEASE_SECONDS: i64 = 15;
const RENEW_INTERVAL: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Enough for one receiver to take >= 2 000 events/s from a single gateway, few enough to
/// spare a struggling one.
const PER_ENDPOINT_CONCURRENCY: usize = 16;
const GLOBAL_CONCURRENCY: usize = 256;
const CLAIM_BATCH: i64 = 200;
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The most lease checks or attempt records written together.
const WRITE_BATCH: usize = 200;

/// "May I still send this delivery?"
type LeaseCheck = (Id, oneshot::Sender<bool>);
/// "Record this attempt", answered once it is committed (or failed to be).
type RecordRequest = (Attempt, oneshot::Sender<()>);

/// Resolves receiver names and refuses internal addresses, so a name cannot be
/// re-pointed at the internal network after the endpoint was saved (DNS rebinding).
struct GuardedResolver {
    allow_insecure: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_insecure = self.allow_insecure;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow_insecure && let Some(bad) = addrs.iter().find(|a| ssrf::is_internal(a.ip())) {
                return Err(format!("{} resolves to the internal address {}", name.as_str(), bad.ip()).into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

pub struct Relay {
    db: Db,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    /// This process's lease owner name.
    owner: String,
    allow_insecure: bool,
    wake: Notify,
    in_flight: Mutex<HashSet<Id>>,
    endpoint_slots: Mutex<HashMap<Id, Arc<Semaphore>>>,
    global_slots: Arc<Semaphore>,
    lease_checks: mpsc::UnboundedSender<LeaseCheck>,
    records: mpsc::UnboundedSender<RecordRequest>,
    /// The receiving ends, taken by `run`.
    queues: Mutex<Option<(mpsc::UnboundedReceiver<LeaseCheck>, mpsc::UnboundedReceiver<RecordRequest>)>>,
}

impl Relay {
    pub fn new(db: Db, clock: Arc<dyn Clock>, allow_insecure: bool) -> Relay {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("callcenter/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { allow_insecure }))
            .build()
            .expect("the HTTP client builds");
        let (lease_checks, lease_rx) = mpsc::unbounded_channel();
        let (records, record_rx) = mpsc::unbounded_channel();
        Relay {
            db,
            clock,
            client,
            owner: format!("relay-{}", Id::generate()),
            allow_insecure,
            wake: Notify::new(),
            in_flight: Mutex::new(HashSet::new()),
            endpoint_slots: Mutex::new(HashMap::new()),
            global_slots: Arc::new(Semaphore::new(GLOBAL_CONCURRENCY)),
            lease_checks,
            records,
            queues: Mutex::new(Some((lease_rx, record_rx))),
        }
    }

    /// Tells the relay that new deliveries were committed (saves up to one poll interval).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Claims and dispatches due deliveries, and writes their bookkeeping, until the task
    /// is dropped (everything runs inside this one future, so aborting it stops all).
    pub async fn run(self: Arc<Self>) {
        let Some((lease_rx, record_rx)) = self.queues.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            tracing::error!("the webhook relay is already running");
            return;
        };
        tokio::join!(self.clone().claim_loop(), self.clone().lease_loop(lease_rx), self.clone().record_loop(record_rx));
    }

    async fn claim_loop(self: Arc<Self>) {
        let mut renewed = Instant::now();
        loop {
            if renewed.elapsed() >= RENEW_INTERVAL {
                renewed = Instant::now();
                self.renew_leases().await;
            }
            let now = self.clock.now();
            let claimed = match store::claim_due(
                &self.db,
                &self.owner,
                now,
                now.plus_seconds(LEASE_SECONDS),
                CLAIM_BATCH,
            )
            .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook relay could not claim deliveries");
                    Vec::new()
                }
            };
            let full_batch = claimed.len() as i64 == CLAIM_BATCH;
            for delivery in claimed {
                let fresh = self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(delivery.id.clone());
                if fresh {
                    tokio::spawn(self.clone().deliver(delivery));
                }
            }
            if !full_batch {
                tokio::select! {
                    _ = self.wake.notified() => {},
                    _ = tokio::time::sleep(POLL_INTERVAL) => {},
                }
            }
        }
    }

    /// Answers lease checks in batches: one UPDATE ... RETURNING per batch.
    async fn lease_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<LeaseCheck>) {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
            let ids: Vec<Id> = batch.iter().map(|(id, _)| id.clone()).collect();
            let until = self.clock.now().plus_seconds(LEASE_SECONDS);
            let ours = store::extend_leases(&self.db, &self.owner, &ids, until).await.unwrap_or_else(|e| {
                // Not sending is safe: the leases run out and the deliveries are claimed again.
                tracing::warn!(error = %e, "webhook relay could not check its leases");
                Default::default()
            });
            for (id, reply) in batch.drain(..) {
                let _ = reply.send(ours.contains(&id));
            }
        }
    }

    /// Records finished attempts in batches: one transaction per batch.
    async fn record_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<RecordRequest>) {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
            let (attempts, replies): (Vec<Attempt>, Vec<oneshot::Sender<()>>) = batch.drain(..).unzip();
            if let Err(e) = store::record_attempts(&self.db, &attempts).await {
                // One bad record (say, its endpoint was deleted meanwhile) must not cost the
                // others theirs: record them one by one.
                tracing::warn!(error = %e, "webhook relay could not record a batch of attempts; recording singly");
                for attempt in attempts.chunks(1) {
                    if let Err(e) = store::record_attempts(&self.db, attempt).await {
                        tracing::warn!(error = %e, delivery = %attempt[0].delivery.id, "webhook attempt not recorded");
                    }
                }
            }
            for reply in replies {
                let _ = reply.send(());
            }
        }
    }

    /// Keeps the leases of every delivery this process holds (sending or queued).
    async fn renew_leases(&self) {
        let held: Vec<Id> = self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        if held.is_empty() {
            return;
        }
        let until = self.clock.now().plus_seconds(LEASE_SECONDS);
        if let Err(e) = store::renew_leases(&self.db, &self.owner, &held, until).await {
            tracing::warn!(error = %e, "webhook relay could not renew its leases");
        }
    }

    fn endpoint_slot(&self, endpoint: &Id) -> Arc<Semaphore> {
        self.endpoint_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(endpoint.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_ENDPOINT_CONCURRENCY)))
            .clone()
    }

    async fn deliver(self: Arc<Self>, d: DueDelivery) {
        // Per-endpoint slot first: a slow receiver's queue never holds global slots.
        let slot = self.endpoint_slot(&d.endpoint_id);
        let _endpoint_permit = slot.acquire_owned().await;
        let _global_permit = self.global_slots.clone().acquire_owned().await;
        let id = d.id.clone();
        if let Err(e) = self.deliver_once(d).await {
            tracing::warn!(error = %e, delivery = %id, "webhook delivery bookkeeping failed");
        }
        // Only now (the attempt is recorded) may this process claim the delivery again.
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    async fn deliver_once(&self, d: DueDelivery) -> Result<(), crate::store::StoreError> {
        if !d.enabled {
            return store::abandon(&self.db, &d.id, "endpoint disabled", self.clock.now()).await;
        }
        let (reply, still_ours) = oneshot::channel();
        if self.lease_checks.send((d.id.clone(), reply)).is_err() || !still_ours.await.unwrap_or(false) {
            return Ok(());
        }
        let started = Instant::now();
        let outcome = self.send(&d).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        let now = self.clock.now();
        let (status_code, error) = match outcome {
            Ok(code) if (200..300).contains(&code) => (Some(code), None),
            Ok(code) => (Some(code), Some(format!("receiver answered HTTP {code}"))),
            Err(e) => (None, Some(e)),
        };
        let succeeded = error.is_none();
        let next_attempt_at = if succeeded {
            None
        } else {
            retry::next_delay((d.attempts + 1) as u32, &mut rand::rng())
                .map(|delay| now.plus_seconds(delay.as_secs() as i64))
        };
        let result = AttemptResult {
            status_code,
            latency_ms,
            error,
            succeeded,
            next_attempt_at,
            disable_if_failing_since_before: now.plus_seconds(-(retry::DISABLE_AFTER.as_secs() as i64)),
        };
        metrics::counter!("webhook_attempts_total", "result" => if succeeded { "success" } else { "failure" })
            .increment(1);
        metrics::histogram!("webhook_attempt_duration_seconds").record(latency_ms as f64 / 1000.0);
        let (reply, recorded) = oneshot::channel();
        if self.records.send((Attempt { delivery: d, result, at: now }, reply)).is_ok() {
            let _ = recorded.await;
        }
        Ok(())
    }

    /// One signed POST; the receiver's status code, or why no response came.
    async fn send(&self, d: &DueDelivery) -> Result<u16, String> {
        let url = ssrf::check_url(&d.url, self.allow_insecure).map_err(|e| format!("URL {e}"))?;
        let body = d.payload.as_bytes();
        // Receivers compare this with their own clock, so it is real time, never a test clock.
        let timestamp = Timestamp::now().as_jiff().as_second();
        let x_signature = signing::x_signature(&d.secret, body).map_err(|e| e.to_string())?;
        let mut signature =
            signing::standard_signature(&d.secret, &d.event_id, timestamp, body).map_err(|e| e.to_string())?;
        if let Some(previous) = &d.previous_secret
            && let Ok(old) = signing::standard_signature(previous, &d.event_id, timestamp, body)
        {
            signature = format!("{signature} {old}");
        }
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("x-signature", x_signature)
            .header("webhook-id", d.event_id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out after 10 s".to_owned()
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut detail = String::new();
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        format!("connection failed: {detail}")
    } else {
        e.to_string()
    }
}
