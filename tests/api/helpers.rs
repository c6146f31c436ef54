//! `spawn_app()`: a real server on 127.0.0.1:0 with a fresh database per test
//! (a SQLite file in a temp dir, or a new PostgreSQL database), and an API key.

use callcenter::config::Config;
use callcenter::store::accounts;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use crate::common::{Backend, TestApp, start_app};

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    start_app(backend, configure).await
}

/// A response: status, headers and the body parsed as JSON (`Null` when empty).
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// Asserts the spec's error shape and returns the error code.
    pub fn error_code(&self) -> &str {
        let error = &self.body["error"];
        assert!(error["message"].is_string(), "error.message missing in {}", self.body);
        assert!(error["details"].is_object(), "error.details missing in {}", self.body);
        error["code"].as_str().unwrap_or_else(|| panic!("error.code missing in {}", self.body))
    }
}

impl TestApp {
    /// A key for another, new account.
    pub async fn key_for_account(&self, name: &str) -> String {
        let account = accounts::ensure_account(&self.state.db, name).await.expect("account");
        accounts::create_key(&self.state.db, &account, None).await.expect("key").1
    }

    pub async fn send(&self, method: Method, path: &str, key: Option<&str>, body: Option<&Value>) -> Resp {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.expect("request sent");
        Resp::read(res).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(&self.key), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(&self.key), Some(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(&self.key), Some(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(&self.key), None).await
    }

    /// Sends raw bytes with a content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Resp {
        let res = self
            .client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent");
        Resp::read(res).await
    }
}

impl Resp {
    pub async fn read(res: reqwest::Response) -> Resp {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp { status, headers, body }
    }
}

/// Asserts an RFC 3339 UTC time at second precision, as the spec writes them.
pub fn assert_time(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("expected a time, got {v}"));
    assert!(s.ends_with('Z') && s.len() == 20 && s.parse::<jiff::Timestamp>().is_ok(), "not an RFC 3339 UTC time: {s}");
}

/// Asserts a 24-character lowercase hex id.
pub fn assert_id(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("expected an id, got {v}"));
    assert!(s.len() == 24 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "bad id {s}");
}
