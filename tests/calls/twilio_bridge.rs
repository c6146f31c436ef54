//! The Twilio doors of a real server: signatures, TwiML, and streams without a valid token.

use std::collections::BTreeMap;
use std::time::Duration;

use callcenter::telephony::simulator::peer::{self, PeerEvent, StreamStart};
use callcenter::telephony::twilio::signature;

use crate::twilio_app;

const TOKEN: &str = crate::TWILIO_TOKEN;

fn form(params: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter()).finish();
    (pairs, body)
}

#[tokio::test]
async fn webhooks_without_a_valid_signature_get_403() {
    let app = twilio_app().await;
    let (pairs, body) = form(&[("CallSid", "CA1"), ("CallStatus", "ringing"), ("From", "+1"), ("To", "+2")]);
    for path in ["/twilio/voice", "/twilio/status"] {
        let url = format!("{}{path}", app.base);
        let unsigned = app
            .client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(unsigned.status(), 403, "{path} unsigned");
        let wrong = signature::sign("another-token", &format!("https://gw.example.com{path}"), &pairs);
        let forged = app
            .client
            .post(&url)
            .header("x-twilio-signature", wrong)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403, "{path} signed with another token");
    }
}

#[tokio::test]
async fn a_signed_inbound_call_to_an_unknown_number_is_answered_with_a_hang_up() {
    let app = twilio_app().await;
    let twiml = signed_voice(
        &app,
        "",
        &[("CallSid", "CA1"), ("From", "+14155550100"), ("To", "+14155550199"), ("Direction", "inbound")],
    )
    .await;
    assert!(twiml.contains("<Hangup/>"), "{twiml}");
}

#[tokio::test]
async fn without_an_auth_token_every_twilio_webhook_is_refused() {
    let app = crate::app().await;
    let (_, body) = form(&[("CallSid", "CA1")]);
    let response = app
        .client
        .post(format!("{}/twilio/voice", app.base))
        .header("x-twilio-signature", "x")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_stream_without_a_valid_call_token_is_closed() {
    let app = crate::app().await;
    let url = format!("ws://{}/twilio/stream", app.base.trim_start_matches("http://"));
    for params in [
        BTreeMap::new(),
        BTreeMap::from([
            ("callId".to_owned(), "60a2e7f3b9c1a83e94d8f2c3".to_owned()),
            ("token".to_owned(), "guess".to_owned()),
        ]),
    ] {
        let start = StreamStart {
            url: url.clone(),
            account_sid: "AC1".into(),
            call_sid: "CA1".into(),
            stream_sid: "MZ1".into(),
            custom_parameters: params,
        };
        let mut handle = peer::connect(start).await.expect("the upgrade itself succeeds");
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match handle.events.recv().await {
                    Some(PeerEvent::Closed) | None => return true,
                    Some(PeerEvent::Heard { audible: true, .. }) => return false,
                    _ => {}
                }
            }
        })
        .await
        .expect("the gateway closes the stream");
        assert!(closed, "the gateway talked to an unauthenticated stream");
    }
}

#[tokio::test]
async fn an_inbound_call_to_one_of_our_numbers_runs_its_template_and_ends_as_an_inbound_call() {
    use callcenter::telephony::simulator::peer::PeerCommand;
    use callcenter::telephony::simulator::twilio_side::TwilioSide;
    use serde_json::json;

    let app = twilio_app().await;
    let (status, template) = app
        .post(
            "/v1/templates",
            json!({"name": "Front desk", "steps": [
                {"type": "greeting", "content": "Thank you for calling {companyName}."},
                {"type": "closing", "content": "Goodbye."}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{template}");
    let (status, number) = app
        .post(
            "/v1/phone-numbers",
            json!({"phone": "+14155550199", "templateId": template["id"], "variables": {"companyName": "Acme"},
                "carrier": "twilio"}),
        )
        .await;
    assert_eq!(status, 201, "{number}");

    let twilio = TwilioSide {
        listen_base: app.base.clone(),
        public_url: "https://gw.example.com".into(),
        account_sid: "AC0000".into(),
        auth_token: TOKEN.into(),
    };
    let mut call = twilio.ring(&app.client, "+14155550100", "+14155550199", "CA0001").await.expect("the call connects");
    // The greeting is heard; the caller then hangs up as Twilio reports it (stop).
    let heard = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = call.peer.events.recv().await {
            if let PeerEvent::Heard { audible: true, .. } = event {
                return true;
            }
        }
        false
    })
    .await
    .expect("the greeting starts within a minute");
    assert!(heard, "the stream closed before the greeting");
    call.peer.commands.send(PeerCommand::HangUp).await.unwrap();

    let record = app.finished_call(&call.call_id, Duration::from_secs(30)).await;
    assert_eq!(record["direction"], "inbound", "{record}");
    assert_eq!(record["phone"], "+14155550100", "{record}");
    assert!(matches!(record["status"].as_str(), Some("completed" | "failed")), "{record}");
    let (status, transcript) = app.get_json(&format!("/v1/calls/{}/transcript", call.call_id)).await;
    assert_eq!(status, 200, "{transcript}");
    let said = transcript.to_string();
    assert!(said.contains("Thank you for calling Acme"), "{transcript}");
}

#[tokio::test]
async fn webhooks_by_get_are_signed_over_the_url_with_its_query() {
    let app = twilio_app().await;
    let (_, query) = form(&[("CallSid", "CA1"), ("From", "+14155550100"), ("To", "+14155550199")]);
    let path = format!("/twilio/voice?{query}");
    let signed = signature::sign(TOKEN, &format!("https://gw.example.com{path}"), &[]);
    let response =
        app.client.get(format!("{}{path}", app.base)).header("x-twilio-signature", &signed).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let twiml = response.text().await.unwrap();
    assert!(twiml.contains("<Hangup/>"), "an unknown number: {twiml}");

    // The same signature does not cover another query, and an unsigned GET is refused.
    let tampered = format!("{}/twilio/voice?{}", app.base, query.replace("CA1", "CA2"));
    let response = app.client.get(tampered).header("x-twilio-signature", &signed).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let response = app.client.get(format!("{}/twilio/status?{query}", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 403);
}

/// Posts a signed `/twilio/voice` (the query, if any, is part of the signed URL) and returns
/// the TwiML, checking it came as `text/xml`.
async fn signed_voice(app: &crate::common::TestApp, query: &str, params: &[(&str, &str)]) -> String {
    let (pairs, body) = form(params);
    let path = format!("/twilio/voice{query}");
    let signed = signature::sign(TOKEN, &format!("https://gw.example.com{path}"), &pairs);
    let response = app
        .client
        .post(format!("{}{path}", app.base))
        .header("x-twilio-signature", signed)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/xml");
    response.text().await.unwrap()
}

async fn front_desk_number(app: &crate::common::TestApp, phone: &str) {
    use serde_json::json;
    let (status, template) =
        app.post("/v1/templates", json!({"name": "Desk", "steps": [{"type": "greeting", "content": "Hello."}]})).await;
    assert_eq!(status, 201, "{template}");
    let body = json!({"phone": phone, "templateId": template["id"], "carrier": "twilio"});
    let (status, number) = app.post("/v1/phone-numbers", body).await;
    assert_eq!(status, 201, "{number}");
}

/// Twilio's signatures carry no timestamp, so a captured `/twilio/voice` can be replayed at
/// will: a replay must neither ring a second call (and take a second slot) nor mint a token
/// that replaces the one Twilio holds.
#[tokio::test]
async fn a_replayed_voice_webhook_rings_no_second_call_and_mints_no_second_token() {
    let app = twilio_app().await;
    front_desk_number(&app, "+14155550199").await;
    let inbound = [("CallSid", "CAreplay"), ("From", "+14155550100"), ("To", "+14155550199"), ("Direction", "inbound")];
    let first = signed_voice(&app, "", &inbound).await;
    assert!(first.contains("<Connect><Stream"), "{first}");
    for _ in 0..3 {
        let again = signed_voice(&app, "", &inbound).await;
        assert!(again.contains("<Hangup/>") && !again.contains("<Stream"), "{again}");
    }
    let (_, calls) = app.get_json("/v1/calls").await;
    assert_eq!(calls["pagination"]["total"], 1, "{calls}");
    assert_eq!(app.state.calls.active(), 1, "one slot, for the one call");

    // The answered-call webhook of a call leg (`?callId=`) hands out its stream token once.
    let call_id = calls["data"][0]["id"].as_str().unwrap().to_owned();
    let replayed = signed_voice(&app, &format!("?callId={call_id}"), &[("CallSid", "CAreplay")]).await;
    assert!(replayed.contains("<Hangup/>") && !replayed.contains("<Stream"), "{replayed}");
}

/// Inbound calls are admitted under the node's call limit like outbound ones: a caller past it
/// hears busy (`<Reject reason="busy"/>`), and no call is created for them.
#[tokio::test]
async fn an_inbound_call_past_the_call_limit_is_rejected_busy() {
    let app = crate::twilio_app_with(|config| config.telephony.max_concurrent_calls = 1).await;
    front_desk_number(&app, "+14155550199").await;
    let ring = |sid: &'static str| [("CallSid", sid), ("From", "+14155550100"), ("To", "+14155550199")];
    let first = signed_voice(&app, "", &ring("CAbusy1")).await;
    assert!(first.contains("<Connect><Stream"), "{first}");
    let second = signed_voice(&app, "", &ring("CAbusy2")).await;
    assert!(second.contains(r#"<Reject reason="busy"/>"#), "{second}");
    let (_, calls) = app.get_json("/v1/calls").await;
    assert_eq!(calls["pagination"]["total"], 1, "{calls}");
}
