use std::time::Duration;

use callcenter::media::decode::decode_bytes;
use serde_json::{Value, json};

use crate::receiver::Receiver;
use crate::{TestApp, app};

const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Words of the caller's turns, lowercased.
fn caller_words(transcript: &Value) -> String {
    transcript["turns"]
        .as_array()
        .expect("turns")
        .iter()
        .filter(|t| t["speaker"] == "caller")
        .map(|t| t["text"].as_str().unwrap_or_default().to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The caller's turns, lowercased, in order.
fn caller_turns(transcript: &Value) -> Vec<String> {
    transcript["turns"]
        .as_array()
        .expect("turns")
        .iter()
        .filter(|t| t["speaker"] == "caller")
        .map(|t| t["text"].as_str().unwrap_or_default().to_lowercase())
        .collect()
}

async fn transcript(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get_json(&format!("/v1/calls/{id}/transcript")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The recording is a stereo 8 kHz WAV about as long as the call.
async fn assert_recording(app: &TestApp, call: &Value) {
    let id = call["id"].as_str().unwrap();
    let response =
        app.client.get(format!("{}/v1/calls/{id}/recording", app.base)).bearer_auth(&app.key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let bytes = response.bytes().await.unwrap().to_vec();
    let audio = decode_bytes(bytes, Some("wav")).expect("a playable WAV");
    assert_eq!((audio.sample_rate, audio.channels), (8000, 2));
    let duration = call["duration"].as_f64().unwrap();
    assert!(
        (audio.duration_secs() - duration).abs() <= 2.0,
        "recording {:.1} s vs call duration {duration} s",
        audio.duration_secs()
    );
}

#[tokio::test]
async fn a_callee_who_agrees_completes_a_successful_call_with_transcript_recording_and_webhooks() {
    let app = app().await;
    let receiver = Receiver::start().await;
    let (status, hook) = app.post("/v1/webhooks", json!({"url": receiver.url(), "events": ["*"]})).await;
    assert_eq!(status, 201, "{hook}");
    receiver.set_secret(hook["secret"].as_str().unwrap());
    let template = app.sales_template().await;

    let id = app.place("+15550100001", &template).await;
    let call = app.finished_call(&id, CALL_TIMEOUT).await;
    let transcript = transcript(&app, &id).await;
    assert_eq!(call["status"], "completed", "{call}\n{transcript:#}");
    assert_eq!(call["outcome"], "successful", "{call}\n{transcript:#}");
    assert!(call["notes"].as_str().is_some_and(|n| !n.is_empty()), "{call}");
    assert!(call["recording"].as_str().unwrap().ends_with(&format!("/v1/calls/{id}/recording")));
    assert!(call["transcript"].as_str().unwrap().ends_with(&format!("/v1/calls/{id}/transcript")));

    let heard = caller_words(&transcript);
    assert!(heard.contains("yes"), "caller turns: {heard}");
    let bot_lines: Vec<&str> = transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["speaker"] == "bot")
        .filter_map(|t| t["text"].as_str())
        .collect();
    assert!(bot_lines.iter().any(|l| l.contains("Premium Widget")), "bot lines: {bot_lines:?}");
    assert_recording(&app, &call).await;

    let received = receiver.wait_for(4, Duration::from_secs(20)).await;
    let types: Vec<&str> = received.iter().map(|r| r.event_type.as_str()).collect();
    for expected in ["call.started", "call.completed", "call.transcript.available", "call.recording.available"] {
        assert!(types.contains(&expected), "missing {expected} in {types:?}");
    }
    let completed = received.iter().find(|r| r.event_type == "call.completed").unwrap();
    assert_eq!(completed.body["data"]["callId"], id.as_str());
    assert_eq!(completed.body["data"]["outcome"], "successful");

    // The answer latency and the ending are in the metrics.
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    for name in ["call_reply_latency_seconds", "calls_ended_total", "calls_active"] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn each_persona_ends_with_its_outcome() {
    let app = app().await;
    let template = app.sales_template().await;
    let cases = [
        ("+15550100002", "completed", "rejected"),
        ("+15550100003", "completed", "optedOut"),
        ("+15550100004", "completed", "callbackRequested"),
        ("+15550100005", "completed", "successful"),
        ("+15550100006", "completed", "voicemail"),
        ("+15550100007", "failed", "noAnswer"),
        ("+15550100008", "failed", "busy"),
    ];
    let mut ids = Vec::new();
    for (phone, _, _) in cases {
        ids.push(app.place(phone, &template).await);
    }
    for ((phone, status, outcome), id) in cases.iter().zip(&ids) {
        let call = app.finished_call(id, CALL_TIMEOUT).await;
        assert_eq!(call["status"], *status, "{phone}: {call}");
        assert_eq!(call["outcome"], *outcome, "{phone}: {call}");
    }
}

/// A persona answers what it was asked, not its next scripted line: "declines" greeted with a
/// statement says nothing to it (no "Yes, speaking." that could pass for a yes to the offer)
/// and no to the offer.
#[tokio::test]
async fn declines_says_nothing_to_a_statement_greeting_and_no_to_the_offer() {
    let app = app().await;
    let (status, template) = app
        .post(
            "/v1/templates",
            json!({"name": "Statement greeting", "steps": [
                {"type": "greeting", "content": "Hi {contactName}, this is Acme."},
                {"type": "question", "content": "Would you like to hear about {productName}?"},
                {"type": "response", "content": "Great, a colleague will email you the details."},
                {"type": "closing", "content": "Thank you for your time. Goodbye."}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{template}");
    let (status, call) = app
        .post(
            "/v1/calls",
            json!({"phone": "+15550100002", "templateId": template["id"],
                   "variables": {"contactName": "Person", "productName": "Premium Widget"}}),
        )
        .await;
    assert_eq!(status, 201, "{call}");
    let id = call["id"].as_str().unwrap();
    let call = app.finished_call(id, CALL_TIMEOUT).await;
    let transcript = transcript(&app, id).await;
    assert_eq!(call["outcome"], "rejected", "{call}\n{transcript:#}");
    let turns = caller_turns(&transcript);
    assert!(turns.iter().all(|t| !t.contains("speaking")), "nobody asked who it is: {turns:?}");
    // "Hello?" as it picks up may or may not be a turn; the answer to the offer is a no.
    let answer = turns.iter().find(|t| !t.contains("hello")).expect("an answer to the offer");
    assert!(answer.starts_with("no"), "{turns:?}");
}

/// Asked who it is, "declines" confirms before it declines the offer.
#[tokio::test]
async fn declines_confirms_who_it_is_when_asked_then_declines() {
    let app = app().await;
    let template = app.sales_template().await;
    let id = app.place("+15550100002", &template).await;
    let call = app.finished_call(&id, CALL_TIMEOUT).await;
    let transcript = transcript(&app, &id).await;
    assert_eq!(call["outcome"], "rejected", "{call}\n{transcript:#}");
    let turns: Vec<String> = caller_turns(&transcript).into_iter().filter(|t| !t.contains("hello")).collect();
    assert!(turns.first().is_some_and(|t| t.contains("speaking")), "first answer: {turns:?}");
    // Today's turn-taking may end the turn at the comma of "No, I am not interested.".
    assert!(turns.iter().skip(1).any(|t| t.starts_with("no")), "{turns:?}");
}

/// The personas of the harder cases: a pause inside the answer, an "uh-huh" during a line, a
/// request for a person (no transfer exists: the bot asks again and the persona declines).
/// One call at a time: each persona transcribes the bot on the STT pool the gateway uses.
#[tokio::test]
async fn the_personas_that_pause_backchannel_or_ask_for_a_person_end_with_their_outcomes() {
    let app = app().await;
    let template = app.sales_template().await;
    let cases = [
        ("+15550100009", "successful", "go ahead"),
        ("+15550100010", "successful", "interested"),
        ("+15550100011", "rejected", "person"),
    ];
    for (phone, outcome, words) in cases {
        let id = app.place(phone, &template).await;
        let call = app.finished_call(&id, CALL_TIMEOUT).await;
        let transcript = transcript(&app, &id).await;
        assert_eq!(call["status"], "completed", "{phone}: {call}\n{transcript:#}");
        assert_eq!(call["outcome"], outcome, "{phone}: {call}\n{transcript:#}");
        let heard = caller_words(&transcript);
        assert!(heard.contains(words), "{phone}: {words:?} not in the caller's turns: {heard}");
    }
}

#[tokio::test]
async fn a_number_no_carrier_reaches_fails_with_a_reason() {
    let app = app().await;
    let template = app.sales_template().await;
    let id = app.place("+14155550100", &template).await;
    let call = app.finished_call(&id, Duration::from_secs(20)).await;
    assert_eq!((call["status"].as_str(), call["outcome"].as_str()), (Some("failed"), Some("failed")), "{call}");
    assert!(call["notes"].as_str().unwrap().contains("no carrier"), "{call}");
}
