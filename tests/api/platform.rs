//! Cross-cutting behaviour: auth, rate limit, idempotency, error shapes for
//! unknown routes and methods, health, metrics and the OpenAPI document.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

async fn missing_malformed_and_revoked_keys_are_401(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.send(Method::GET, "/v1/contacts", None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "unauthorized");
    for bad in ["nope", "cc_live_", &format!("{}x", app.key), &app.key.replace("cc_live_", "cc_test_")] {
        let r = app.send(Method::GET, "/v1/contacts", Some(bad), None).await;
        assert_eq!(r.status, 401, "{bad}");
    }
    let res = app
        .client
        .get(format!("{}/v1/contacts", app.base))
        .header("authorization", format!("Basic {}", app.key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A key made through the API works, is listed without its secret, and dies at once when revoked.
    let r = app.post("/v1/api-keys", json!({"name": "ci"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let key_id = r.body["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(r.body["prefix"].as_str().unwrap()));
    assert_eq!(app.send(Method::GET, "/v1/contacts", Some(&secret), None).await.status, 200);
    let list = app.get("/v1/api-keys").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    assert!(!list.body.to_string().contains(&secret[secret.len() - 20..]), "secret is never shown again");
    let r = app.delete(&format!("/v1/api-keys/{key_id}")).await;
    assert_eq!(r.status, 200);
    assert_time(&r.body["revokedAt"]);
    let r = app.send(Method::GET, "/v1/contacts", Some(&secret), None).await;
    assert_eq!(r.status, 401);
    // Another account cannot see or revoke this account's keys.
    let other = app.key_for_account("globex").await;
    let first_key_id = list.body["data"][1]["id"].as_str().unwrap().to_owned();
    let r = app.send(Method::DELETE, &format!("/v1/api-keys/{first_key_id}"), Some(&other), None).await;
    assert_eq!(r.status, 404);
    assert_eq!(app.get("/v1/contacts").await.status, 200);
}

async fn unknown_routes_methods_and_bad_ids(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.get("/v1/nothing-here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    let r = app.send(Method::PUT, "/v1/contacts", Some(&app.key), Some(&json!({}))).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.error_code(), "method_not_allowed");
    let r = app.get("/v1/contacts/not-an-id").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["field"], "id");
    let r = app.get("/v1/contacts/60a2e7f3b9c1a83e94d8f2a1").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
}

async fn rate_limit_is_per_key(b: Backend) {
    let app = spawn_app_with(b, |c| c.rate_limit_per_minute = 5).await;
    let other = app.key_for_account("globex").await;
    for i in 0..5 {
        let r = app.get("/v1/contacts").await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.headers["x-ratelimit-limit"], "5");
        assert_eq!(r.headers["x-ratelimit-remaining"].to_str().unwrap(), (4 - i).to_string());
    }
    let r = app.get("/v1/contacts").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error_code(), "rate_limited");
    let retry_after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry_after), "retry-after {retry_after}");
    assert_eq!(r.headers["x-ratelimit-remaining"], "0");
    // The other key is unaffected.
    let r = app.send(Method::GET, "/v1/contacts", Some(&other), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-ratelimit-remaining"], "4");
}

async fn default_rate_limit_is_100_per_minute(b: Backend) {
    let app = spawn_app(b).await;
    for _ in 0..100 {
        assert_eq!(app.get("/v1/api-keys").await.status, 200);
    }
    assert_eq!(app.get("/v1/api-keys").await.status, 429);
}

async fn idempotent_posts_replay(b: Backend) {
    let app = spawn_app(b).await;
    let body = json!({"name": "Jane", "phone": "+15557654321"});
    let send = |key: &'static str, body: Value| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(format!("{}/v1/contacts", app.base))
                .bearer_auth(&app.key)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            Resp::read(res).await
        }
    };
    let first = send("k-1", body.clone()).await;
    assert_eq!(first.status, 201);
    let again = send("k-1", body.clone()).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "same key + same body replays the stored response");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(app.get("/v1/contacts").await.body["pagination"]["total"], 1);
    let other = send("k-1", json!({"name": "Jim", "phone": "+15557654321"})).await;
    assert_eq!(other.status, 422);
    assert_eq!(other.error_code(), "idempotency_key_reused");
    // A failed request is not stored: the same key may be retried with a fixed body.
    let bad = send("k-2", json!({"name": "Jim"})).await;
    assert_eq!(bad.status, 400);
    let fixed = send("k-2", json!({"name": "Jim"})).await;
    assert_eq!(fixed.status, 400);
    // Keys are per account.
    let other_key = app.key_for_account("globex").await;
    let res = app
        .client
        .post(format!("{}/v1/contacts", app.base))
        .bearer_auth(&other_key)
        .header("idempotency-key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

async fn health_ready_and_metrics(b: Backend) {
    let app = spawn_app(b).await;
    for path in ["/healthz", "/readyz"] {
        let r = app.send(Method::GET, path, None, None).await;
        assert_eq!(r.status, 200, "{path}");
    }
    app.get("/v1/contacts").await;
    let res = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("http_requests_total{method=\"GET\",route=\"/v1/contacts\",status=\"200\"}"), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
}

/// With `--metrics-token`, `/metrics` answers only a scraper that presents it.
async fn metrics_behind_a_bearer_token(b: Backend) {
    let app = spawn_app_with(b, |c| c.metrics_token = Some("scrape-secret".into())).await;
    let url = format!("{}/metrics", app.base);
    for auth in [None, Some("Bearer wrong"), Some("scrape-secret")] {
        let mut req = app.client.get(&url);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
    }
    let res = app.client.get(&url).header("authorization", "Bearer scrape-secret").send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// A one-greeting template; its id.
async fn plain_template(app: &TestApp) -> String {
    let r =
        app.post("/v1/templates", json!({"name": "Plain", "steps": [{"type": "greeting", "content": "Hello"}]})).await;
    r.body["id"].as_str().unwrap().to_owned()
}

/// Per-account quotas: one past the limit is a 409 `quota_exceeded` naming what and how many.
async fn quotas_bound_what_an_account_holds(b: Backend) {
    let quotas = callcenter::config::Quotas { api_keys: 2, webhook_endpoints: 1, open_campaigns: 1, queued_calls: 2 };
    let app = spawn_app_with(b, move |c| {
        c.quotas = quotas;
        c.allow_insecure_webhooks = true;
    })
    .await;
    let template = plain_template(&app).await;
    let cases = [
        ("/v1/api-keys", json!({"name": "ci"}), 1, "API keys", 2),
        ("/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}), 1, "webhook endpoints", 1),
        ("/v1/campaigns", json!({"name": "C", "templateId": template}), 1, "open campaigns", 1),
        ("/v1/calls", json!({"phone": "+15551230001", "templateId": template}), 2, "queued calls", 2),
    ];
    for (path, body, allowed, what, limit) in cases {
        for _ in 0..allowed {
            let r = app.post(path, body.clone()).await;
            assert_eq!(r.status, 201, "{path}: {}", r.body);
        }
        let r = app.post(path, body).await;
        assert_eq!(r.status, 409, "{path}: {}", r.body);
        assert_eq!(r.error_code(), "quota_exceeded");
        assert_eq!(r.body["error"]["details"], json!({"of": what, "limit": limit}), "{path}");
    }
}

/// A client that hangs up while its keyed request is still running used to leave the key "in
/// flight" for 24 h (every retry a 409) because the handler was dropped between its write and
/// the key's result. The request now finishes on its own and the retry gets its response.
/// PostgreSQL only: a row lock holds the handler mid-request while the key's claim goes through.
#[tokio::test]
async fn a_keyed_request_whose_client_hung_up_is_replayed_on_retry() {
    let app = spawn_app(crate::common::Backend::Postgres).await;
    let template = plain_template(&app).await;
    let campaign = app.post("/v1/campaigns", json!({"name": "C", "templateId": template})).await;
    assert_eq!(campaign.status, 201, "{}", campaign.body);
    let id = campaign.body["id"].as_str().unwrap().to_owned();

    let mut lock = app.state.db.write.begin().await.unwrap();
    sqlx::query("SELECT id FROM campaigns WHERE id = $1 FOR UPDATE")
        .bind(id.clone())
        .execute(&mut *lock)
        .await
        .unwrap();
    let send = |timeout: Duration| {
        app.client
            .post(format!("{}/v1/campaigns/{id}/status", app.base))
            .bearer_auth(&app.key)
            .header("idempotency-key", "pause-1")
            .timeout(timeout)
            .json(&json!({"status": "paused"}))
            .send()
    };
    assert!(send(Duration::from_millis(500)).await.is_err(), "the row lock holds the request");
    tokio::time::sleep(Duration::from_millis(200)).await;
    lock.commit().await.unwrap();

    let replay = crate::common::eventually(Duration::from_secs(10), "the retry's answer", || async {
        let res = send(Duration::from_secs(5)).await.unwrap();
        (res.status() != 409).then_some(res)
    })
    .await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(app.get(&format!("/v1/campaigns/{id}")).await.body["status"], "paused");
}

/// The spec's endpoints, plus the ones we added where it is silent.
const DOCUMENTED: &[(&str, &str)] = &[
    // The spec's endpoints.
    ("post", "/v1/calls"),
    ("get", "/v1/calls"),
    ("get", "/v1/calls/{id}"),
    ("post", "/v1/calls/{id}/cancel"),
    ("post", "/v1/campaigns"),
    ("get", "/v1/campaigns"),
    ("get", "/v1/campaigns/{id}"),
    ("post", "/v1/campaigns/{id}/status"),
    ("post", "/v1/contacts"),
    ("get", "/v1/contacts"),
    ("get", "/v1/contacts/{id}"),
    ("post", "/v1/templates"),
    ("get", "/v1/templates"),
    ("get", "/v1/templates/{id}"),
    ("get", "/v1/analytics/calls"),
    ("get", "/v1/analytics/campaigns"),
    // Where the spec is silent.
    ("patch", "/v1/contacts/{id}"),
    ("delete", "/v1/contacts/{id}"),
    ("patch", "/v1/templates/{id}"),
    ("delete", "/v1/templates/{id}"),
    ("post", "/v1/api-keys"),
    ("get", "/v1/api-keys"),
    ("delete", "/v1/api-keys/{id}"),
    ("post", "/v1/contact-lists"),
    ("get", "/v1/contact-lists"),
    ("get", "/v1/contact-lists/{id}"),
    ("patch", "/v1/contact-lists/{id}"),
    ("delete", "/v1/contact-lists/{id}"),
    ("get", "/v1/contact-lists/{id}/contacts"),
    ("post", "/v1/contact-lists/{id}/contacts"),
    ("delete", "/v1/contact-lists/{id}/contacts/{contactId}"),
    ("post", "/v1/contact-lists/{id}/import"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/webhooks/{id}"),
    ("patch", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"),
    ("post", "/v1/webhooks/{id}/rotate-secret"),
    ("post", "/v1/webhooks/{id}/test"),
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("post", "/v1/webhooks/{id}/deliveries/{deliveryId}/retry"),
    ("post", "/v1/phone-numbers"),
    ("get", "/v1/phone-numbers"),
    ("get", "/v1/phone-numbers/{id}"),
    ("patch", "/v1/phone-numbers/{id}"),
    ("delete", "/v1/phone-numbers/{id}"),
    ("post", "/v1/carriers"),
    ("get", "/v1/carriers"),
    ("get", "/v1/carriers/{id}"),
    ("patch", "/v1/carriers/{id}"),
    ("delete", "/v1/carriers/{id}"),
];

async fn openapi_documents_every_route(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.send(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    let doc = r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in DOCUMENTED {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    // Every documented operation is routed: none falls through to the 404 fallback.
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete =
                path.replace("{id}", "60a2e7f3b9c1a83e94d8f2a1").replace("{contactId}", "60a2e7f3b9c1a83e94d8f2a2");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app.send(m, &concrete, Some(&app.key), Some(&json!({}))).await;
            let fell_through =
                r.status == 404 && r.body["error"]["message"].as_str().unwrap_or("").starts_with("No route");
            let not_allowed = r.status == 405;
            assert!(!fell_through && !not_allowed, "{method} {path} is documented but not routed");
        }
    }
}

both_backends!(
    missing_malformed_and_revoked_keys_are_401,
    unknown_routes_methods_and_bad_ids,
    rate_limit_is_per_key,
    default_rate_limit_is_100_per_minute,
    idempotent_posts_replay,
    health_ready_and_metrics,
    metrics_behind_a_bearer_token,
    quotas_bound_what_an_account_holds,
    openapi_documents_every_route,
);
