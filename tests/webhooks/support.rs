//! In-process servers on an injectable clock, child-process servers, fresh databases,
//! and bounded waiting.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use callcenter::store::accounts;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

pub use crate::common::{Backend, TestApp, fresh_pg_database, start_app};

/// A server with `--allow-insecure-webhooks` (so it may deliver to the local receiver)
/// or without it; its relay runs on `app.clock`, which the test moves forward.
pub async fn spawn_app(backend: Backend, allow_insecure_webhooks: bool) -> TestApp {
    start_app(backend, |config| {
        config.allow_insecure_webhooks = allow_insecure_webhooks;
        config.rate_limit_per_minute = 1_000_000;
    })
    .await
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    pub async fn read(res: reqwest::Response) -> Resp {
        let status = res.status();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp { status, body }
    }

    /// Asserts a 400 `invalid_parameter` naming `field`.
    #[track_caller]
    pub fn assert_invalid(&self, field: &str) {
        assert_eq!(self.status, 400, "{}", self.body);
        assert_eq!(self.body["error"]["code"], "invalid_parameter", "{}", self.body);
        assert_eq!(self.body["error"]["details"]["field"], field, "{}", self.body);
    }

    #[track_caller]
    pub fn assert_not_found(&self) {
        assert_eq!(self.status, 404, "{}", self.body);
        assert_eq!(self.body["error"]["code"], "not_found", "{}", self.body);
    }
}

/// Sends one API request to `base` with `key`.
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    let mut req = client.request(method, format!("{base}{path}")).bearer_auth(key);
    if let Some(body) = body {
        req = req.json(body);
    }
    Resp::read(req.send().await.unwrap_or_else(|e| panic!("request to {base}{path} failed: {e}"))).await
}

impl TestApp {
    pub async fn key_for_account(&self, name: &str) -> String {
        let account = accounts::ensure_account(&self.state.db, name).await.expect("account");
        accounts::create_key(&self.state.db, &account, None).await.expect("key").1
    }

    pub async fn send(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Resp {
        call(&self.client, &self.base, key, method, path, body).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, &self.key, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, &self.key, Some(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, &self.key, Some(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, &self.key, None).await
    }

    /// Creates an endpoint; returns (id, secret).
    pub async fn create_endpoint(&self, url: &str, events: Value) -> (String, String) {
        let r = self.post("/v1/webhooks", json!({"url": url, "events": events})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        (r.body["id"].as_str().unwrap().to_owned(), r.body["secret"].as_str().unwrap().to_owned())
    }

    /// Queues a `webhook.test` event for an endpoint; returns its event id.
    pub async fn send_test_event(&self, endpoint: &str) -> String {
        let r = self.post(&format!("/v1/webhooks/{endpoint}/test"), json!({})).await;
        assert_eq!(r.status, 202, "{}", r.body);
        r.body["eventId"].as_str().unwrap().to_owned()
    }

    /// The endpoint's delivery attempts, newest first.
    pub async fn attempts(&self, endpoint: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/webhooks/{endpoint}/deliveries?limit=100")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["data"].as_array().unwrap().clone()
    }

    /// Waits until the delivery log holds `n` attempts (the relay records an attempt
    /// after the receiver answered, so the receiver seeing a request is not enough).
    pub async fn wait_for_attempts(&self, endpoint: &str, n: usize) -> Vec<Value> {
        eventually(Duration::from_secs(15), &format!("{n} attempts in the delivery log"), || async {
            let attempts = self.attempts(endpoint).await;
            (attempts.len() >= n).then_some(attempts)
        })
        .await
    }

    /// A campaign in status `scheduled` (with a template, no contacts); its id.
    pub async fn create_campaign(&self) -> String {
        let r = self
            .post("/v1/templates", json!({"name": "Hooks", "steps": [{"type": "greeting", "content": "Hello"}]}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let template = r.body["id"].as_str().unwrap().to_owned();
        let r = self.post("/v1/campaigns", json!({"name": "Webhook campaign", "templateId": template})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn set_campaign_status(&self, campaign: &str, status: &str) {
        let r = self.post(&format!("/v1/campaigns/{campaign}/status"), json!({"status": status})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

pub use crate::common::eventually;

/// Asserts `evt_` + 24 lowercase hex.
#[track_caller]
pub fn assert_event_id(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("expected an event id, got {v}"));
    let hex = s.strip_prefix("evt_").unwrap_or_else(|| panic!("event id without evt_: {s}"));
    assert!(hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "bad {s}");
}

/// Asserts an RFC 3339 UTC time at second precision.
#[track_caller]
pub fn assert_time(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("expected a time, got {v}"));
    assert!(s.ends_with('Z') && s.len() == 20 && s.parse::<jiff::Timestamp>().is_ok(), "not an RFC 3339 UTC time: {s}");
}

pub fn parse_time(v: &Value) -> jiff::Timestamp {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("expected a time, got {v}"))
}

/// Runs the `callcenter` binary to completion; its stdout.
pub async fn run_cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_callcenter"))
        .args(args)
        .env("CALLCENTER_LOG", "warn")
        .output()
        .await
        .expect("callcenter runs");
    assert!(
        out.status.success(),
        "callcenter {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `callcenter keys create`: the new key (the last line of stdout).
pub async fn create_key_cli(store_args: &[&str]) -> String {
    let mut args = vec!["keys", "create", "--account", "acme"];
    args.extend_from_slice(store_args);
    let out = run_cli(&args).await;
    out.lines().last().expect("a key line").trim().to_owned()
}

/// `callcenter serve` as a child process.
pub struct Server {
    child: Child,
    pub base: String,
    pub log: PathBuf,
    /// Held open: the server may still write to stdout.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `serve` on 127.0.0.1:0 with the insecure-webhooks flag and a high rate limit,
    /// logging to `log`, and waits for its `listening on` line.
    pub async fn start(store_args: &[&str], log: &Path) -> Server {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_callcenter"))
            .args(["serve", "--listen", "127.0.0.1:0", "--allow-insecure-webhooks"])
            .args(["--rate-limit-per-minute", "1000000"])
            .args(store_args)
            .env("CALLCENTER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("callcenter serve starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            let mut line = String::new();
            loop {
                line.clear();
                let n = stdout.read_line(&mut line).await.expect("read stdout");
                assert!(n > 0, "callcenter serve exited before listening; see {}", log.display());
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    return addr.to_owned();
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("callcenter serve did not start within 30 s; see {}", log.display()));
        Server { child, base, log: log.to_owned(), _stdout: stdout }
    }

    /// SIGKILL: no shutdown code runs, exactly like a crash.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        self.child.wait().await.expect("child reaped");
    }
}
