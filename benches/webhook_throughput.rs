//! Webhook relay benchmark: an in-process gateway on SQLite delivers to a local receiver.
//!
//! ```text
//! cargo bench --bench webhook_throughput [-- --events 5000 --rate 500 --seconds 4]
//! ```
//! Two phases, one result line:
//! - throughput: `--events` events committed as fast as possible (100 per transaction),
//!   timed from the first commit to the last receipt: delivered events per second;
//! - delay: events committed one per transaction (as a state change does) at `--rate`
//!   per second for `--seconds`, below capacity: commit-to-receipt delay p50 and p99.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use callcenter::app::{App, AppState};
use callcenter::config::{Config, StoreConfig};
use callcenter::domain::{Id, Timestamp};
use callcenter::store::accounts;
use callcenter::webhooks::{EventType, emit};
use hdrhistogram::Histogram;
use serde_json::json;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
        .unwrap_or(default)
}

/// Receipt time per event id.
type Receipts = Arc<Mutex<HashMap<String, Instant>>>;

async fn start_receiver(receipts: Receipts) -> SocketAddr {
    let router = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let receipts = receipts.clone();
            async move {
                let at = Instant::now();
                if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                    receipts.lock().unwrap().entry(id.to_owned()).or_insert(at);
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("receiver binds");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Commits `n` campaign events in one transaction through `emit`, the outbox's door.
async fn commit_events(state: &AppState, account: &Id, n: usize) -> Vec<(String, Instant)> {
    let mut tx = state.db.write.begin().await.expect("begin");
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let data = json!({"campaignId": Id::generate(), "status": "active", "previousStatus": "scheduled"});
        let id = emit(&mut tx, account, EventType::CampaignStarted, data, Timestamp::now()).await.expect("emit");
        ids.push(id);
    }
    tx.commit().await.expect("commit");
    let committed = Instant::now();
    state.relay.wake();
    ids.into_iter().map(|id| (id, committed)).collect()
}

/// Waits until every committed event (in every phase so far) has arrived.
async fn wait_for_all(receipts: &Receipts, expected: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = receipts.lock().unwrap().len();
        if got >= expected {
            return;
        }
        assert!(Instant::now() < deadline, "only {got} of {expected} events arrived within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and then a short smoke run is enough.
    let measuring = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let events = arg(&args, "--events", if measuring { 5000 } else { 200 }) as usize;
    let rate = arg(&args, "--rate", if measuring { 500 } else { 100 });
    let seconds = arg(&args, "--seconds", if measuring { 4 } else { 1 });

    let receipts: Receipts = Arc::default();
    let receiver = start_receiver(receipts.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_store(StoreConfig { data_dir: PathBuf::from(dir.path()), database_url: None });
    config.allow_insecure_webhooks = true;
    let app = App::build(config).await.expect("app builds");
    let state = app.state().clone();
    tokio::spawn(app.run(std::future::pending()));
    let account = accounts::ensure_account(&state.db, "bench").await.expect("account");
    callcenter::store::webhooks::create(
        &state.db,
        &account,
        callcenter::store::webhooks::NewEndpoint {
            url: format!("http://{receiver}/hook"),
            description: None,
            events: vec!["*".into()],
            enabled: true,
        },
        Timestamp::now(),
    )
    .await
    .expect("endpoint");

    // Warm-up: connections, statement caches.
    let warm = commit_events(&state, &account, 50).await;
    wait_for_all(&receipts, warm.len(), Duration::from_secs(30)).await;

    // Throughput.
    let started = Instant::now();
    let mut queued = Vec::with_capacity(events);
    while queued.len() < events {
        let batch = (events - queued.len()).min(100);
        queued.extend(commit_events(&state, &account, batch).await);
    }
    let committed_in = started.elapsed();
    wait_for_all(&receipts, warm.len() + events, Duration::from_secs(600)).await;
    let last = {
        let r = receipts.lock().unwrap();
        queued.iter().map(|(id, _)| r[id]).max().unwrap()
    };
    let elapsed = last - started;
    let per_second = events as f64 / elapsed.as_secs_f64();

    // Delay at a steady rate below capacity.
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut paced = Vec::with_capacity(total);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..total {
        tick.tick().await;
        paced.extend(commit_events(&state, &account, 1).await);
    }
    wait_for_all(&receipts, warm.len() + events + total, Duration::from_secs(120)).await;
    let mut delay = Histogram::<u64>::new(3).unwrap();
    {
        let r = receipts.lock().unwrap();
        for (id, committed) in &paced {
            delay.record(r[id].saturating_duration_since(*committed).as_micros() as u64).unwrap();
        }
    }
    let ms = |q: f64| delay.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "webhook_throughput sqlite events={events} delivered_per_s={per_second:.0} \
         (committed in {:.2} s, delivered in {:.2} s) | paced {rate}/s x {seconds} s: \
         commit-to-receipt p50={:.1} ms p99={:.1} ms max={:.1} ms",
        committed_in.as_secs_f64(),
        elapsed.as_secs_f64(),
        ms(0.50),
        ms(0.99),
        delay.max() as f64 / 1000.0,
    );
}
