//! The SSRF guard: internal receivers are refused at creation (without the insecure
//! flag) and again at delivery time.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::receiver::Receiver;
use crate::support::*;

both_backends!(internal_urls_are_refused_without_the_insecure_flag);

async fn internal_urls_are_refused_without_the_insecure_flag(b: Backend) {
    let app = spawn_app(b, false).await;
    for url in [
        "https://127.0.0.1/x",
        "https://10.0.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://localhost/x",
        "https://192.168.1.20:8443/x",
        "https://[::ffff:127.0.0.1]/x",
        "http://example.com/x",
        "http://93.184.216.34/x",
        "ftp://example.com/x",
        "https://user:pw@example.com/x",
        "example.com/x",
    ] {
        let r = app.post("/v1/webhooks", json!({"url": url, "events": ["*"]})).await;
        assert_eq!(r.status, 400, "{url} must be refused: {}", r.body);
        r.assert_invalid("url");
        if url == "https://localhost/x" {
            // What our resolver answered stays inside: it maps the internal network for a caller.
            let text = r.body.to_string();
            assert!(!text.contains("127.0.0.1") && !text.contains("::1"), "{text}");
        }
    }
    // A public literal address is fine (no DNS needed), and a PATCH is checked the same way.
    let (id, _) = app.create_endpoint("https://93.184.216.34/hooks", json!(["*"])).await;
    app.patch(&format!("/v1/webhooks/{id}"), json!({"url": "https://169.254.169.254/x"})).await.assert_invalid("url");
    app.patch(&format!("/v1/webhooks/{id}"), json!({"url": "https://localhost:8443/x"})).await.assert_invalid("url");
    assert_eq!(app.get(&format!("/v1/webhooks/{id}")).await.body["url"], "https://93.184.216.34/hooks");
}

/// The flag allows plain http and internal addresses for local receivers only.
#[tokio::test]
async fn the_insecure_flag_allows_loopback_http_only() {
    let app = spawn_app(Backend::Sqlite, true).await;
    for url in ["http://127.0.0.1:9/x", "http://[::1]:9/x", "http://localhost:9/x", "https://10.0.0.1/x"] {
        let r = app.post("/v1/webhooks", json!({"url": url, "events": ["*"]})).await;
        assert_eq!(r.status, 201, "{url}: {}", r.body);
    }
    let r = app.post("/v1/webhooks", json!({"url": "http://example.com/x", "events": ["*"]})).await;
    r.assert_invalid("url");
}

/// An endpoint that became internal after it was saved (here: its row is edited, as a
/// DNS change would) is refused again when delivering, and the attempt says why.
#[tokio::test]
async fn internal_receivers_are_refused_again_at_delivery() {
    let app = spawn_app(Backend::Sqlite, false).await;
    let rx = Receiver::start().await;
    let (id, secret) = app.create_endpoint("https://93.184.216.34/hooks", json!(["*"])).await;
    rx.set_secret(&secret);
    sqlx::query("UPDATE webhook_endpoints SET url = $1 WHERE id = $2")
        .bind(rx.url().replace("http://", "https://"))
        .bind(id.clone())
        .execute(&app.state.db.write)
        .await
        .unwrap();
    app.send_test_event(&id).await;
    let attempts = app.wait_for_attempts(&id, 1).await;
    let a = &attempts[0];
    assert_eq!(a["statusCode"], serde_json::Value::Null, "{a}");
    assert!(a["error"].as_str().is_some_and(|e| e.contains("internal")), "{a}");
    assert!(a["nextRetryAt"].is_string(), "{a}");
    rx.assert_stays_at(0, Duration::from_millis(300)).await;

    // A name resolving to loopback is caught by the delivery-time resolver too.
    sqlx::query("UPDATE webhook_endpoints SET url = $1 WHERE id = $2")
        .bind(format!("https://localhost:{}/hook", rx.url().rsplit(':').next().unwrap().trim_end_matches("/hook")))
        .bind(id.clone())
        .execute(&app.state.db.write)
        .await
        .unwrap();
    app.send_test_event(&id).await;
    let attempts = app.wait_for_attempts(&id, 2).await;
    let newest = &attempts[0];
    assert!(newest["error"].as_str().is_some_and(|e| e.contains("internal")), "{newest}");
    rx.assert_stays_at(0, Duration::from_millis(300)).await;
}
