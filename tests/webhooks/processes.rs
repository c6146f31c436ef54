//! The real binary as child processes: `kill -9` in the middle of delivering loses
//! nothing (SQLite), and two servers sharing one PostgreSQL database deliver every
//! event exactly once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::json;

use crate::receiver::{Mode, Receiver};
use crate::support::*;

/// Queues `n` test events for `endpoint`, spreading the requests over `servers`
/// (`(base, key)`), `concurrency` at a time; the event ids.
async fn queue_test_events(servers: &[(&str, &str)], endpoint: &str, n: usize, concurrency: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let path = format!("/v1/webhooks/{endpoint}/test");
    futures::stream::iter(0..n)
        .map(|i| {
            let (base, key) = servers[i % servers.len()];
            let (client, path) = (&client, &path);
            async move {
                let r = call(client, base, key, Method::POST, path, Some(&json!({}))).await;
                assert_eq!(r.status, 202, "{}", r.body);
                r.body["eventId"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// Arrivals per event id.
fn arrivals(rx: &Receiver) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for d in rx.received() {
        *counts.entry(d.webhook_id).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn kill_9_in_the_middle_of_delivering_loses_no_event() {
    const EVENTS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().unwrap();
    let store = ["--data-dir", data_dir];
    let key = create_key_cli(&store).await;
    let log = dir.path().join("server.log");
    let mut server = Server::start(&store, &log).await;

    let rx = Receiver::start().await;
    // Slow answers keep deliveries in flight when the process dies.
    rx.set_mode(Mode::Slow(Duration::from_millis(150)));
    let client = reqwest::Client::new();
    let r = call(
        &client,
        &server.base,
        &key,
        Method::POST,
        "/v1/webhooks",
        Some(&json!({"url": rx.url(), "events": ["*"]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let endpoint = r.body["id"].as_str().unwrap().to_owned();
    rx.set_secret(r.body["secret"].as_str().unwrap());

    let events = queue_test_events(&[(&server.base, &key)], &endpoint, EVENTS, 8).await;
    let unique: HashSet<&String> = events.iter().collect();
    assert_eq!(unique.len(), EVENTS);
    // Kill once some, but not all, have arrived.
    rx.wait_for(EVENTS / 4, Duration::from_secs(30)).await;
    server.kill9().await;
    let before_crash = arrivals(&rx);
    assert!(
        before_crash.len() < EVENTS,
        "every event arrived before the kill ({}); the test proves nothing",
        before_crash.len()
    );

    let restarted = Server::start(&store, &log).await;
    // A crashed relay's leases run out (15 s at most), then the new process delivers the
    // rest, including what was in flight at the kill. Done when the log shows every
    // delivery succeeded.
    let path = format!("/v1/webhooks/{endpoint}/deliveries?limit=100");
    let what = format!("every delivery to succeed after the restart (server log: {})", restarted.log.display());
    eventually(Duration::from_secs(45), &what, || async {
        let mut succeeded = HashSet::new();
        for page in 1.. {
            let r = call(&client, &restarted.base, &key, Method::GET, &format!("{path}&page={page}"), None).await;
            let data = r.body["data"].as_array().unwrap().clone();
            succeeded
                .extend(data.iter().filter(|a| a["deliveryStatus"] == "succeeded").map(|a| a["eventId"].to_string()));
            if data.len() < 100 {
                break;
            }
        }
        (succeeded.len() == EVENTS).then_some(())
    })
    .await;
    rx.assert_no_problems();
    let all = arrivals(&rx);
    let missing: Vec<&String> = events.iter().filter(|e| !all.contains_key(*e)).collect();
    assert!(missing.is_empty(), "{} events never arrived: {missing:?}", missing.len());
    assert_eq!(all.len(), EVENTS, "deliveries of events nobody created");
    // Only what was in flight at the kill (at most the per-endpoint concurrency, 16) is
    // repeated, and a repeat is the same event: same webhook-id, same bytes.
    let repeated: Vec<&String> = all.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(repeated.len() <= 16, "{} events delivered more than once", repeated.len());
    assert!(repeated.iter().all(|id| before_crash.contains_key(*id)), "only events in flight at the kill repeat");
    let received = rx.received();
    for id in &repeated {
        let copies: Vec<_> = received.iter().filter(|d| &&d.webhook_id == id).collect();
        assert!(copies.iter().all(|d| d.raw == copies[0].raw && d.body["id"] == id.as_str()), "{id} changed");
    }
    eprintln!(
        "crash test: {} of {EVENTS} arrived before the kill, {} were delivered again after the restart",
        before_crash.len(),
        repeated.len()
    );
}

#[tokio::test]
async fn two_processes_on_one_postgres_database_deliver_each_event_exactly_once() {
    const EVENTS: usize = 1000;
    let url = fresh_pg_database().await;
    let store = ["--database-url", url.as_str()];
    let out = run_cli(&["migrate", "--database-url", &url]).await;
    assert!(out.contains("migrations applied"), "{out}");
    let key = create_key_cli(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let (a, b) = tokio::join!(Server::start(&store, &log_a), Server::start(&store, &log_b));

    let rx = Receiver::start().await;
    let client = reqwest::Client::new();
    let r =
        call(&client, &a.base, &key, Method::POST, "/v1/webhooks", Some(&json!({"url": rx.url(), "events": ["*"]})))
            .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let endpoint = r.body["id"].as_str().unwrap().to_owned();
    rx.set_secret(r.body["secret"].as_str().unwrap());

    let events = queue_test_events(&[(&a.base, &key), (&b.base, &key)], &endpoint, EVENTS, 16).await;
    let unique: HashSet<&String> = events.iter().collect();
    assert_eq!(unique.len(), EVENTS);
    let what = format!("all {EVENTS} events (server logs: {} {})", a.log.display(), b.log.display());
    eventually(Duration::from_secs(60), &what, || async { (rx.count() >= EVENTS).then_some(()) }).await;
    // Give a would-be second delivery time to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rx.assert_no_problems();
    let counts = arrivals(&rx);
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} events delivered more than once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    assert_eq!(counts.len(), EVENTS, "deliveries of unknown events");
    assert!(events.iter().all(|e| counts.get(e) == Some(&1)));

    // Exactly one attempt per event is recorded, and none is left pending.
    let path = format!("/v1/webhooks/{endpoint}/deliveries?limit=100");
    eventually(Duration::from_secs(15), "one recorded attempt per event", || async {
        let r = call(&client, &b.base, &key, Method::GET, &path, None).await;
        (r.body["pagination"]["total"] == EVENTS as u64).then_some(())
    })
    .await;
    let r = call(&client, &a.base, &key, Method::GET, &path, None).await;
    assert!(r.body["data"].as_array().unwrap().iter().all(|a| a["statusCode"] == 200), "{}", r.body);
}
