//! REST load driver: seeds a database and drives a live server with N concurrent
//! clients, reporting throughput and latency percentiles.
//!
//! ```text
//! cargo bench --bench rest_load -- seed --data-dir DIR [--database-url URL] [--calls 100000]
//! cargo bench --bench rest_load -- run --url http://127.0.0.1:8080 --key KEY \
//!     --scenario list-calls|create-contact [--concurrency 100] [--seconds 20]
//! ```
//! `scripts/bench-rest.sh` runs the whole measurement of docs/BENCHMARKS.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callcenter::domain::{Id, Timestamp};
use callcenter::store::{Db, Sql, accounts};
use hdrhistogram::Histogram;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` appends `--bench`; ignore it.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("seed") => seed(&args).await,
        Some("run") => run(&args).await,
        _ => {
            eprintln!("usage: rest_load seed --data-dir DIR [--database-url URL] [--calls N]");
            eprintln!(
                "       rest_load run --url URL --key KEY --scenario list-calls|create-contact [--concurrency N] [--seconds S]"
            );
            Ok(())
        }
    }
}

/// Creates an account with a key, a template, a contact and `--calls` calls.
async fn seed(args: &[String]) -> anyhow::Result<()> {
    let data_dir = PathBuf::from(arg(args, "--data-dir").unwrap_or_else(|| "./bench-data".into()));
    let url = arg(args, "--database-url");
    let calls: usize = arg(args, "--calls").map(|c| c.parse()).transpose()?.unwrap_or(100_000);
    let db = Db::connect(url.as_deref(), &data_dir).await?;
    db.migrate().await?;
    let account = accounts::ensure_account(&db, "bench").await?;
    let (_, key) = accounts::create_key(&db, &account, Some("bench")).await?;
    let now = Timestamp::now();
    let template = Id::generate();
    sqlx::query(
        "INSERT INTO templates (id, account_id, name, description, industry, steps, variables, created_at, updated_at) \
         VALUES ($1, $2, 'Bench', NULL, 'sales', $3, '[]', $4, $4)",
    )
    .bind(template.as_str())
    .bind(account.as_str())
    .bind(r#"[{"id":"1","type":"greeting","content":"Hello"}]"#)
    .bind(now.to_db())
    .execute(&db.write)
    .await?;
    let started = Instant::now();
    let statuses = ["completed", "completed", "completed", "failed", "queued", "scheduled"];
    let outcomes = ["successful", "noAnswer", "voicemail", "rejected"];
    let mut done = 0;
    while done < calls {
        let batch = (calls - done).min(500);
        let mut sql = Sql::new(
            "INSERT INTO calls (id, account_id, status, direction, phone, contact_id, template_id, campaign_id, variables, \
             scheduled_at, caller_id, started_at, ended_at, duration, recording_url, transcript_url, outcome, notes, \
             effective_at, created_at, updated_at) VALUES ",
        );
        for i in 0..batch {
            let n = done + i;
            let at = now.plus_seconds(-((calls - n) as i64) * 30).to_db();
            let status = statuses[n % statuses.len()];
            let completed = status == "completed";
            if i > 0 {
                sql.push(", ");
            }
            sql.push_with(
                "(?, ?, ?, 'outbound', ?, NULL, ?, NULL, '{}', NULL, NULL, ?, ?, ?, NULL, NULL, ?, NULL, ?, ?, ?)",
                [
                    Id::generate().into_string().into(),
                    account.as_str().into(),
                    status.into(),
                    format!("+1555{:07}", n % 10_000_000).into(),
                    template.as_str().into(),
                    completed.then(|| at.clone()).into(),
                    completed.then(|| at.clone()).into(),
                    completed.then_some((n % 600) as i64).into(),
                    completed.then(|| outcomes[n % outcomes.len()].to_owned()).into(),
                    at.clone().into(),
                    at.clone().into(),
                    at.into(),
                ],
            );
        }
        sql.query().execute(&db.write).await?;
        done += batch;
        if done % 20_000 == 0 || done == calls {
            eprintln!("seeded {done}/{calls} calls");
        }
    }
    // The bulk insert bypassed store::calls, so bring the list totals' counters up to date.
    callcenter::store::calls::rebuild_counts(&db, &account).await?;
    eprintln!("seeded {calls} calls in {:.1} s", started.elapsed().as_secs_f64());
    println!("{key}");
    Ok(())
}

async fn run(args: &[String]) -> anyhow::Result<()> {
    let url = arg(args, "--url").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let key = arg(args, "--key").ok_or_else(|| anyhow::anyhow!("--key is required"))?;
    let scenario = arg(args, "--scenario").unwrap_or_else(|| "list-calls".into());
    let concurrency: usize = arg(args, "--concurrency").map(|c| c.parse()).transpose()?.unwrap_or(100);
    let seconds: u64 = arg(args, "--seconds").map(|c| c.parse()).transpose()?.unwrap_or(20);
    anyhow::ensure!(matches!(scenario.as_str(), "list-calls" | "create-contact"), "unknown scenario {scenario}");

    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let warmup_until = Instant::now() + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
        let (url, key, scenario, errors) = (url.clone(), key.clone(), scenario.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut n = 0u64;
            while Instant::now() < deadline {
                let start = Instant::now();
                let request = if scenario == "list-calls" {
                    client.get(format!("{url}/v1/calls?limit=20")).bearer_auth(&key)
                } else {
                    let body = serde_json::json!({
                        "name": format!("Load {worker}-{n}"),
                        "phone": format!("+1555{:03}{:04}", worker % 1000, n % 10_000),
                        "email": format!("load{worker}.{n}@example.com"),
                        "tags": ["load"],
                    });
                    client.post(format!("{url}/v1/contacts")).bearer_auth(&key).json(&body)
                };
                let ok = match request.send().await {
                    Ok(res) => {
                        let ok = res.status().is_success();
                        let _ = res.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                if start >= warmup_until {
                    hist.record(start.elapsed().as_micros().max(1) as u64).ok();
                }
                n += 1;
            }
            hist
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        total.add(t.await?)?;
    }
    let measured = seconds.saturating_sub(2).max(1) as f64;
    println!(
        "scenario={scenario} concurrency={concurrency} requests={} throughput={:.0}/s p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms errors={}",
        total.len(),
        total.len() as f64 / measured,
        total.value_at_quantile(0.50) as f64 / 1000.0,
        total.value_at_quantile(0.90) as f64 / 1000.0,
        total.value_at_quantile(0.99) as f64 / 1000.0,
        total.max() as f64 / 1000.0,
        errors.load(Ordering::Relaxed)
    );
    Ok(())
}
