//! A thousand short inbound calls in a row leave nothing behind: no tokio tasks, no call
//! slots, and no memory growth of the order a per-call leak would cause. Each call rings our
//! number through Twilio's doors, hears the first frame of its one-word greeting, hangs up,
//! and waits for its record to be finished; 1 000 of them, 8 at a time, took 13.6-18.0 s in a
//! debug build on 2 shared cores (23.9 s with the rest of the binary running beside it).

use std::time::Duration;

use callcenter::telephony::simulator::peer::{PeerCommand, PeerEvent};
use futures::StreamExt;
use serde_json::json;
use tokio::time::Instant;

use crate::common::{TestApp, eventually};
use crate::{twilio_app, twilio_side};

const OUR_NUMBER: &str = "+14155550199";
const WARM_UP: usize = 20;
const CALLS: usize = 1000;
/// Calls in flight at once.
const CONCURRENT: usize = 8;
/// RSS growth allowed over the `CALLS` calls after the warm-up (`cargo test --test calls leak
/// -- --nocapture` prints it). Measured 8.3-11.3 MiB in 8 runs, nearly all of it in the first
/// few hundred calls (SQLite's page caches and the allocator's arenas filling up: over 4 000
/// calls the growth was +10.4 MiB after 500, then +2.6 MiB over the next 3 500). A leak of
/// 32 KiB a call would add 31 MiB.
const RSS_BOUND: u64 = 20 << 20;
/// RSS growth allowed over the second half of the calls, when the caches are warm (measured
/// 0.3-1.1 MiB): catches a leak of 12 KiB a call or more. Checked by adding a 32 KiB leak per
/// call to the session (+42 MiB in all, +17 MiB over the second half: both bounds fail) and a
/// never-ending task per call (1 000 more alive tasks).
const RSS_SECOND_HALF_BOUND: u64 = 6 << 20;
/// Alive tasks allowed above the baseline once the calls are over: none (measured 6 -> 6 every
/// run). The usual slack, pooled keep-alive HTTP connections (a task at each end for 90 s,
/// more or fewer depending on how requests overlapped), is removed at the source: the test's
/// client keeps no idle connections, and the count is read once it has held still for 1 s.
const TASK_SLACK: usize = 0;

/// Resident set size of this process (the server runs in it).
fn rss_bytes() -> u64 {
    callcenter::process::resident_kib().expect("VmRSS in /proc/self/status") * 1024
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// One short call: ring, hear the first frame of the greeting (the stream was admitted and
/// the session runs), hang up, and wait for the record to be finished.
async fn short_call(app: &TestApp, n: usize) {
    let call_sid = format!("CA{n:032}");
    let mut call = twilio_side(app)
        .ring(&app.client, "+14155550100", OUR_NUMBER, &call_sid)
        .await
        .unwrap_or_else(|e| panic!("call {n} does not connect: {e}"));
    let heard = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = call.peer.events.recv().await {
            match event {
                PeerEvent::Heard { audible: true, .. } => return true,
                PeerEvent::Closed => return false,
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap_or_else(|_| panic!("call {n}: no greeting within 30 s"));
    assert!(heard, "call {n}: the stream closed before the greeting");
    call.peer.commands.send(PeerCommand::HangUp).await.expect("the peer runs");
    let id = call.call_id.clone();
    let record = crate::common::eventually_every(
        Duration::from_millis(20),
        Duration::from_secs(30),
        &format!("call {n} to end"),
        || async {
            let (_, record) = app.get_json(&format!("/v1/calls/{id}")).await;
            matches!(record["status"].as_str(), Some("completed" | "failed")).then_some(record)
        },
    )
    .await;
    assert_eq!(record["direction"], "inbound", "{record}");
}

async fn run_calls(app: &TestApp, range: std::ops::Range<usize>) {
    futures::stream::iter(range).for_each_concurrent(CONCURRENT, |n| short_call(app, n)).await;
}

/// Waits until background work has drained: the alive-task count stops changing.
async fn settled_tasks() -> usize {
    let mut last = alive_tasks();
    let mut stable = 0;
    while stable < 10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = alive_tasks();
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
    }
    last
}

/// Set in the child process that runs the calls.
const CHILD: &str = "CALLCENTER_LEAK_TEST_CHILD";

/// RSS is the whole process's, and the other tests of this binary run in parallel in it: the
/// calls run in a child process of this same binary, running only this test.
#[test]
fn a_thousand_short_calls_leave_no_tasks_slots_or_memory_behind() {
    if std::env::var_os(CHILD).is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        return runtime.block_on(thousand_short_calls());
    }
    let name = "leak::a_thousand_short_calls_leave_no_tasks_slots_or_memory_behind";
    let child = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    eprint!("{}", String::from_utf8_lossy(&child.stderr));
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "the calls failed ({}):\n{stdout}", child.status);
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}");
}

async fn thousand_short_calls() {
    let mut app = twilio_app().await;
    // Pooled keep-alive connections each hold a task on both ends for 90 s; without a pool,
    // every request's connection (and its tasks) is gone when the request is.
    app.client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    app.number_running(OUR_NUMBER, "Short", json!([{"type": "greeting", "content": "Hello."}])).await;

    run_calls(&app, 0..WARM_UP).await;
    let base_tasks = settled_tasks().await;
    let base_rss = rss_bytes();

    let started = Instant::now();
    let half = WARM_UP + CALLS / 2;
    run_calls(&app, WARM_UP..half).await;
    let half_rss = rss_bytes();
    run_calls(&app, half..WARM_UP + CALLS).await;
    let took = started.elapsed();

    let tasks = settled_tasks().await;
    let rss = rss_bytes();
    let growth = rss.saturating_sub(base_rss);
    let second_half = rss.saturating_sub(half_rss);
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    eprintln!(
        "{CALLS} calls ({CONCURRENT} at a time) in {:.1} s; alive tasks {base_tasks} -> {tasks}; \
         RSS {:.1} -> {:.1} -> {:.1} MiB (+{:.1} MiB in all, +{:.1} MiB over the second half)",
        took.as_secs_f64(),
        mib(base_rss),
        mib(half_rss),
        mib(rss),
        mib(growth),
        mib(second_half),
    );
    eventually(Duration::from_secs(5), "every call slot to be free", || async {
        (app.state.calls.active() == 0).then_some(())
    })
    .await;
    assert!(tasks <= base_tasks + TASK_SLACK, "alive tasks grew from {base_tasks} to {tasks} over {CALLS} calls");
    assert!(growth <= RSS_BOUND, "RSS grew by {:.1} MiB over {CALLS} calls", mib(growth));
    assert!(
        second_half <= RSS_SECOND_HALF_BOUND,
        "RSS grew by {:.1} MiB over the last {} calls",
        mib(second_half),
        CALLS / 2
    );
}
