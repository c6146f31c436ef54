//! The SIP user agent on 127.0.0.1: what a trunk's requests get (OPTIONS 200; INVITE refusals
//! with the code a trunk acts on), checked with a raw SIP client over UDP, and a whole call
//! placed by SIPp (Debian's sip-tester) to one of our numbers.

use std::net::SocketAddr;
use std::time::Duration;

use callcenter::config::SipConfig;
use serde_json::{Value, json};
use tokio::net::UdpSocket;

use crate::common::{self, Backend, TestApp, start_app};

const NUMBER: &str = "+14155550199";

async fn sip_app(configure: impl FnOnce(&mut SipConfig)) -> (TestApp, SocketAddr) {
    let mut sip = SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_address: None,
        rtp_ports: (40_000, 40_999),
        allow: SipConfig::default_allow(),
    };
    configure(&mut sip);
    let app = start_app(Backend::Sqlite, |config| {
        config.rate_limit_per_minute = 1_000_000;
        config.telephony.models_dir = common::models_dir();
        config.telephony.sip = Some(sip);
    })
    .await;
    let address = *app.state.calls.sip_address.get().expect("SIP is bound");
    (app, address)
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app.client.post(format!("{}{path}", app.base)).bearer_auth(&app.key).json(&body).send().await;
    let response = response.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.client.get(format!("{}{path}", app.base)).bearer_auth(&app.key).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Registers `NUMBER` on the SIP trunk, running a one-line template.
async fn our_number(app: &TestApp) {
    let steps = json!([
        {"type": "greeting", "content": "Hello, this is the front desk."},
        {"type": "question", "content": "How can we help you today?"}
    ]);
    let (status, template) = post(app, "/v1/templates", json!({"name": "Desk", "steps": steps})).await;
    assert_eq!(status, 201, "{template}");
    let body = json!({"phone": NUMBER, "templateId": template["id"], "carrier": "sip"});
    let (status, number) = post(app, "/v1/phone-numbers", body).await;
    assert_eq!(status, 201, "{number}");
}

/// SIPp, on 127.0.0.1, placing one call to `NUMBER` at `sip` with `args` (scenario, timing,
/// media port).
async fn sipp(sip: SocketAddr, args: &[&str]) -> std::process::ExitStatus {
    tokio::process::Command::new("sipp")
        .args(args)
        .args(["-s", "14155550199", "-m", "1", "-nostdin", "-i", "127.0.0.1", "-p", "0"])
        .arg(sip.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .expect("sipp runs (scripts/setup.sh --test installs sip-tester)")
}

/// The app's one call, once it is stored as completed.
async fn completed_call(app: &TestApp) -> Value {
    common::eventually(Duration::from_secs(30), "the SIP call stored", || async {
        let (_, calls) = get(app, "/v1/calls").await;
        let call = calls["data"][0].clone();
        (call["status"] == "completed").then_some(call)
    })
    .await
}

/// An SDP offer from 127.0.0.1 with the given codec lines.
fn offer(m_line: &str, rtpmaps: &str) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{m_line}\r\n{rtpmaps}")
}

/// Sends one request over UDP as a minimal user agent and returns the final status code.
async fn request(sip: SocketAddr, method: &str, user: &str, body: Option<&str>) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let tag: u32 = rand::random();
    let (content_type, body) = match body {
        Some(sdp) => ("Content-Type: application/sdp\r\n", sdp),
        None => ("", ""),
    };
    let message = format!(
        "{method} sip:{user}@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{tag};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@{local}>;tag={tag}\r\n\
         To: <sip:{user}@{sip}>\r\n\
         Call-ID: {tag}@{local}\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:caller@{local}>\r\n\
         {content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.send_to(message.as_bytes(), sip).await.unwrap();
    let mut buffer = vec![0u8; 4096];
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (len, _) = socket.recv_from(&mut buffer).await.unwrap();
            let text = String::from_utf8_lossy(&buffer[..len]);
            let code: u16 = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            if code >= 200 {
                return code;
            }
        }
    })
    .await
    .expect("a final response within 5 s")
}

#[tokio::test]
async fn options_get_200_and_each_refused_invite_gets_its_own_code() {
    let (app, sip) = sip_app(|_| {}).await;
    our_number(&app).await;
    assert_eq!(request(sip, "OPTIONS", "keepalive", None).await, 200);

    let pcmu = offer("m=audio 40000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000\r\n");
    assert_eq!(request(sip, "INVITE", "15550000000", Some(&pcmu)).await, 404, "not one of our numbers");
    assert_eq!(request(sip, "INVITE", "alice", Some(&pcmu)).await, 404, "not a number at all");
    let g729 = offer("m=audio 40000 RTP/AVP 18", "a=rtpmap:18 G729/8000\r\n");
    assert_eq!(request(sip, "INVITE", "14155550199", Some(&g729)).await, 488, "no common codec");
    assert_eq!(request(sip, "INVITE", "14155550199", None).await, 488, "no offer");
    assert_eq!(request(sip, "INVITE", "14155550199", Some("v=0\r\nm=audio x\r\n")).await, 400, "unreadable SDP");
    // None of these made a call.
    let (_, calls) = get(&app, "/v1/calls").await;
    assert_eq!(calls["pagination"]["total"], 0, "{calls}");
}

#[tokio::test]
async fn an_address_outside_the_allow_list_gets_403() {
    let (app, sip) = sip_app(|config| config.allow = vec!["10.0.0.0/8".parse().unwrap()]).await;
    our_number(&app).await;
    let pcmu = offer("m=audio 40000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000\r\n");
    assert_eq!(request(sip, "INVITE", "14155550199", Some(&pcmu)).await, 403);
}

#[tokio::test]
async fn sipp_calls_our_number_and_the_call_runs_its_template() {
    let (app, sip) = sip_app(|_| {}).await;
    our_number(&app).await;
    // Loaded before the call, so a slow machine's model load does not eat into SIPp's 15 s.
    app.state.calls.speech().await.expect("the speech models load");
    // SIPp's built-in caller: INVITE with a PCMU offer, ACK, 15 s of call, BYE.
    let status = sipp(sip, &["-sn", "uac", "-d", "15000", "-timeout", "30s", "-mp", "41000"]).await;
    assert!(status.success(), "SIPp's call did not go through: {status}");
    let call = completed_call(&app).await;
    let id = call["id"].as_str().unwrap();
    let (_, call) = get(&app, &format!("/v1/calls/{id}")).await;
    assert_eq!(call["direction"], "inbound", "{call}");
    // SIPp calls as `sip:sipp@...`, no number: the record keeps ours.
    assert_eq!(call["phone"], NUMBER, "{call}");
    assert!(call["duration"].as_i64().unwrap_or(0) >= 5, "{call}");
    let notes = call["notes"].as_str().unwrap_or_default();
    assert!(notes.starts_with("Caller hung up during step"), "SIPp's BYE ended it: {call}");
    let (_, transcript) = get(&app, &format!("/v1/calls/{id}/transcript")).await;
    let said = transcript.to_string();
    assert!(said.contains("front desk"), "the bot's greeting is in the transcript: {said}");
    // The recording holds both sides of the call.
    let recording = app.client.get(format!("{}/v1/calls/{id}/recording", app.base)).bearer_auth(&app.key).send().await;
    let recording = recording.unwrap();
    assert_eq!(recording.status(), 200);
    assert!(recording.bytes().await.unwrap().len() > 4 * 16_000, "seconds of audio recorded");
}

/// A trunk caller offering PCMA and telephone-event presses 1 after the question: the key is
/// the answer, the bot says its response and closing, and ends the call with our BYE
/// (sip/uac_dtmf.xml, with the DTMF RTP Debian's sip-tester ships).
#[tokio::test]
async fn a_key_pressed_over_rtp_answers_and_the_gateway_hangs_up() {
    let (app, sip) = sip_app(|_| {}).await;
    let steps = json!([
        {"type": "greeting", "content": "Hello, this is Acme."},
        {"type": "question", "content": "Would you like our new catalogue? Press 1 for yes, or 2 for no."},
        {"type": "response", "content": "Great, it is on its way."},
        {"type": "closing", "content": "Thank you. Goodbye."}
    ]);
    let (status, template) = post(&app, "/v1/templates", json!({"name": "Catalogue", "steps": steps})).await;
    assert_eq!(status, 201, "{template}");
    let body = json!({"phone": NUMBER, "templateId": template["id"], "carrier": "sip"});
    assert_eq!(post(&app, "/v1/phone-numbers", body).await.0, 201);
    app.state.calls.speech().await.expect("the speech models load");

    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/sip/uac_dtmf.xml");
    let status = sipp(sip, &["-sf", scenario, "-timeout", "90s", "-mp", "41100"]).await;
    assert!(status.success(), "SIPp did not get the gateway's BYE: {status}");
    let call = completed_call(&app).await;
    assert_eq!(call["outcome"], "successful", "{call}");
    assert!(call["notes"].as_str().unwrap_or_default().contains("pressed 1"), "{call}");
    let id = call["id"].as_str().unwrap();
    let (_, transcript) = get(&app, &format!("/v1/calls/{id}/transcript")).await;
    assert!(transcript.to_string().contains("Great, it is on its way."), "{transcript}");
}
