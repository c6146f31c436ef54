//! A real webhook receiver: axum on 127.0.0.1:0. It checks BOTH signatures of every
//! request with the crate's own verifiers (the ones the README tells integrators to
//! use), records what arrived, and can be told to fail, hang or be down.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use callcenter::webhooks::signing;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// 200 at once.
    Ok,
    /// 500 at once.
    Fail,
    /// Answers only after 15 s (the relay gives up after 10 s).
    Hang,
    /// 200 after a delay, so deliveries stay in flight for a while.
    Slow(Duration),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub webhook_id: String,
    pub event_type: String,
    pub body: Value,
    /// The body byte for byte, as signed.
    pub raw: Bytes,
    pub headers: HeaderMap,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
    }
}

#[derive(Default)]
struct Shared {
    secret: Mutex<Option<String>>,
    previous_secret: Mutex<Option<String>>,
    mode: Mutex<Option<Mode>>,
    received: Mutex<Vec<Received>>,
    problems: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("receiver binds");
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            shared: Arc::new(Shared::default()),
            server: Mutex::new(None),
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&self, listener: TcpListener) {
        let router = Router::new().route("/hook", post(handle)).with_state(self.shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        *lock(&self.server) = Some((tx, task));
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The secret both signatures must verify with.
    pub fn set_secret(&self, secret: &str) {
        *lock(&self.shared.secret) = Some(secret.to_owned());
    }

    /// During a rotation: `webhook-signature` must ALSO verify with this one.
    pub fn set_previous_secret(&self, secret: Option<&str>) {
        *lock(&self.shared.previous_secret) = secret.map(str::to_owned);
    }

    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = Some(mode);
    }

    /// Closes the port: deliveries get "connection refused".
    pub async fn down(&self) {
        let server = lock(&self.server).take();
        if let Some((tx, task)) = server {
            let _ = tx.send(());
            tokio::time::timeout(Duration::from_secs(5), task).await.expect("receiver stops").unwrap();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("receiver re-binds its port");
        self.serve(listener);
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.shared.received).len()
    }

    /// Waits (bounded) until at least `n` requests arrived; all of them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        crate::support::eventually(timeout, &format!("{n} webhook requests at the receiver"), || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }

    /// Asserts nothing more arrives for `quiet` (beyond the `n` already there).
    pub async fn assert_stays_at(&self, n: usize, quiet: Duration) {
        tokio::time::sleep(quiet).await;
        let got = self.received();
        assert_eq!(
            got.len(),
            n,
            "expected no more deliveries, got {:?}",
            got.iter().map(|r| (&r.webhook_id, &r.event_type)).collect::<Vec<_>>()
        );
    }

    /// Every request so far was well-formed and correctly signed.
    #[track_caller]
    pub fn assert_no_problems(&self) {
        let problems = lock(&self.shared.problems);
        assert!(problems.is_empty(), "the receiver rejected requests: {problems:#?}");
    }
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let problems = check(&shared, &headers, &body);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let received = Received {
        webhook_id: header(&headers, "webhook-id").unwrap_or_default().to_owned(),
        event_type: json["type"].as_str().unwrap_or_default().to_owned(),
        body: json,
        raw: body.clone(),
        headers: headers.clone(),
        at: Instant::now(),
    };
    lock(&shared.received).push(received);
    if !problems.is_empty() {
        lock(&shared.problems).extend(problems);
        return StatusCode::BAD_REQUEST;
    }
    let mode = lock(&shared.mode).unwrap_or(Mode::Ok);
    match mode {
        Mode::Ok => StatusCode::OK,
        Mode::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(15)).await;
            StatusCode::OK
        }
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What is wrong with a request, as a receiver following the README would see it.
fn check(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(secret) = lock(&shared.secret).clone() else {
        return vec!["a request arrived before the test told the receiver its secret".into()];
    };
    if header(headers, "content-type") != Some("application/json") {
        problems.push(format!("content-type {:?}", header(headers, "content-type")));
    }
    if !header(headers, "user-agent").is_some_and(|ua| ua.starts_with("callcenter/")) {
        problems.push(format!("user-agent {:?}", header(headers, "user-agent")));
    }
    match header(headers, "x-signature") {
        Some(sig) => {
            if let Err(e) = signing::verify_x_signature(&secret, body, sig) {
                problems.push(format!("X-Signature {sig}: {e}"));
            }
        }
        None => problems.push("no X-Signature".into()),
    }
    let id = header(headers, "webhook-id");
    let timestamp = header(headers, "webhook-timestamp").and_then(|t| t.parse::<i64>().ok());
    let signature = header(headers, "webhook-signature");
    match (id, timestamp, signature) {
        (Some(id), Some(ts), Some(sig)) => {
            // Replay protection as Standard Webhooks recommends: a 5-minute tolerance.
            let now = jiff::Timestamp::now().as_second();
            if (now - ts).abs() > 300 {
                problems.push(format!("webhook-timestamp {ts} is {} s from now", now - ts));
            }
            if let Err(e) = signing::verify_standard(&secret, id, ts, body, sig) {
                problems.push(format!("webhook-signature with the current secret: {e}"));
            }
            if let Some(previous) = lock(&shared.previous_secret).clone()
                && let Err(e) = signing::verify_standard(&previous, id, ts, body, sig)
            {
                problems.push(format!("webhook-signature with the previous secret: {e}"));
            }
            let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            if json["id"] != id {
                problems.push(format!("webhook-id {id} is not the payload's id {}", json["id"]));
            }
        }
        other => problems.push(format!("Standard Webhooks headers missing: {other:?}")),
    }
    problems
}
