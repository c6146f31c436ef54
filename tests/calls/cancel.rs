//! Cancelling calls that are already ringing or talking (the spec's cancel covers scheduled
//! calls; the API documents what it does for live ones).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::Backend;
use crate::receiver::Receiver;
use crate::{app, app_on, common};

#[tokio::test]
async fn cancelling_a_ringing_call_ends_it_before_it_is_answered() {
    let app = app().await;
    let template = app.sales_template().await;
    // This simulated callee lets it ring for seconds, then reports no answer.
    let id = app.place("+15550100007", &template).await;
    common::eventually(Duration::from_secs(20), "the call rings", || async {
        (app.get_json(&format!("/v1/calls/{id}")).await.1["status"] == "ringing").then_some(())
    })
    .await;
    let (status, body) = app.post(&format!("/v1/calls/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert_eq!(app.state.calls.active(), 0, "the slot is free at once");

    // The carrier's no-answer arrives later and changes nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, call) = app.get_json(&format!("/v1/calls/{id}")).await;
    assert_eq!(call["status"], "cancelled", "{call}");
    assert!(call["outcome"].is_null(), "{call}");
    assert!(call["endedAt"].is_string(), "{call}");
}

/// On PostgreSQL: the session's store paths (heartbeat, live transcript, cancel, finish) hold
/// there too.
#[tokio::test]
async fn cancelling_a_call_in_progress_hangs_up_and_keeps_its_transcript_and_recording() {
    let app = app_on(Backend::Postgres).await;
    let receiver = Receiver::start().await;
    let (status, hook) = app.post("/v1/webhooks", json!({"url": receiver.url(), "events": ["call.completed"]})).await;
    assert_eq!(status, 201, "{hook}");
    receiver.set_secret(hook["secret"].as_str().unwrap());
    let template = app.sales_template().await;

    let id = app.place("+15550100001", &template).await;
    common::eventually_every(Duration::from_millis(100), Duration::from_secs(60), "the call is answered", || async {
        (app.get_json(&format!("/v1/calls/{id}")).await.1["status"] == "in-progress").then_some(())
    })
    .await;
    // Let the greeting start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cancelled_at = Instant::now();
    let (status, body) = app.post(&format!("/v1/calls/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"id": id, "status": "cancelled", "message": "Call successfully cancelled"}));

    let call =
        common::eventually_every(Duration::from_millis(50), Duration::from_secs(10), "the session ends", || async {
            let (_, call) = app.get_json(&format!("/v1/calls/{id}")).await;
            call["endedAt"].is_string().then_some(call)
        })
        .await;
    let took = cancelled_at.elapsed();
    assert!(took < Duration::from_secs(3), "the session hung up {took:?} after the cancel");
    assert_eq!(call["status"], "cancelled", "{call}");
    assert!(call["outcome"].is_string(), "{call}");
    assert!(call["notes"].as_str().unwrap().contains("cancelled"), "{call}");
    assert!(call["duration"].as_i64().is_some(), "{call}");

    let (status, transcript) = app.get_json(&format!("/v1/calls/{id}/transcript")).await;
    assert_eq!(status, 200, "{transcript}");
    // Whether a turn was finished by then depends on the machine's speed; the list is there.
    assert!(transcript["turns"].is_array(), "{transcript}");
    let recording =
        app.client.get(format!("{}/v1/calls/{id}/recording", app.base)).bearer_auth(&app.key).send().await.unwrap();
    assert_eq!(recording.status(), 200);
    let audio = callcenter::media::decode::decode_bytes(recording.bytes().await.unwrap().to_vec(), Some("wav"))
        .expect("a playable WAV");
    assert!(audio.duration_secs() >= 1.5, "the recording covers the call: {:.1} s", audio.duration_secs());

    let received = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received[0].event_type, "call.completed");
    assert_eq!(received[0].body["data"]["callId"], id.as_str());
    assert_eq!(received[0].body["data"]["status"], "cancelled");
    assert_eq!(app.state.calls.active(), 0, "the slot is free");
    // The callee may have been transcribing the greeting when the call was cut.
    app.speech_idle().await;
}
