use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use callcenter::telephony::twilio::rest::{CreateCall, TwilioRest, TwilioRestError};

pub const SID: &str = "AC00000000000000000000000000000001";
pub const TOKEN: &str = "auth-token-1";

/// One request the fake received: the path after the account, and the form fields in order.
type Request = (String, Vec<(String, String)>);

#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<Request>>>);

impl Seen {
    pub fn requests(&self) -> Vec<Request> {
        self.0.lock().unwrap().clone()
    }
}

/// Twilio's Calls API as documented: basic auth with the account SID, form bodies, 201 with
/// the call resource, errors as {code, message, more_info, status}.
async fn calls(
    State(seen): State<Seen>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}")));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#.to_string());
    }
    assert_eq!(headers.get("content-type").unwrap(), "application/x-www-form-urlencoded");
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let created = {
        let mut requests = seen.0.lock().unwrap();
        requests.push((path.1.clone(), form.clone()));
        requests.iter().filter(|(p, _)| p == "Calls.json").count()
    };
    let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if path.1 == "Calls.json" {
        if value("To").as_deref() == Some("+1555") {
            return (StatusCode::BAD_REQUEST, r#"{"code":21211,"message":"The 'To' number +1555 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#.to_string());
        }
        return (
            StatusCode::CREATED,
            format!(
                r#"{{"sid":"CA{created:04}","status":"queued","to":"{}","from":"{}","account_sid":"{SID}"}}"#,
                value("To").unwrap(),
                value("From").unwrap()
            ),
        );
    }
    let sid = path.1.trim_end_matches(".json");
    (StatusCode::OK, format!(r#"{{"sid":"{sid}","status":"{}"}}"#, value("Status").unwrap()))
}

/// A local Twilio Calls API; call sids are `CA0001`, `CA0002`, ... in creation order.
pub async fn fake_twilio() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new().route("/2010-04-01/Accounts/{account}/{*rest}", post(calls)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn call(to: &str) -> CreateCall {
    CreateCall {
        to: to.into(),
        from: "+15005550006".into(),
        url: "https://gw.example.com/twilio/voice?callId=c1".into(),
        status_callback: "https://gw.example.com/twilio/status?callId=c1".into(),
        machine_detection: Some("Enable".into()),
        timeout_secs: 30,
    }
}

#[tokio::test]
async fn places_a_call_with_the_documented_form_fields_and_basic_auth() {
    let (base, seen) = fake_twilio().await;
    let client = TwilioRest::new(&base, SID, TOKEN).unwrap();
    let created = client.create_call(&call("+14155550100")).await.unwrap();
    assert_eq!((created.sid.as_str(), created.status.as_str()), ("CA0001", "queued"));

    let requests = seen.0.lock().unwrap().clone();
    let (path, form) = &requests[0];
    assert_eq!(path, "Calls.json");
    let all = |name: &str| form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(all("To"), ["+14155550100"]);
    assert_eq!(all("From"), ["+15005550006"]);
    assert_eq!(all("Url"), ["https://gw.example.com/twilio/voice?callId=c1"]);
    assert_eq!(all("StatusCallback"), ["https://gw.example.com/twilio/status?callId=c1"]);
    assert_eq!(all("StatusCallbackEvent"), ["initiated", "ringing", "answered", "completed"]);
    assert_eq!(all("MachineDetection"), ["Enable"]);
    assert_eq!(all("Timeout"), ["30"]);
}

#[tokio::test]
async fn hangs_up_and_reports_twilio_errors() {
    let (base, seen) = fake_twilio().await;
    let client = TwilioRest::new(&base, SID, TOKEN).unwrap();
    let ended = client.update_status("CA0001", "completed").await.unwrap();
    assert_eq!(ended.status, "completed");
    assert_eq!(seen.0.lock().unwrap()[0].0, "Calls/CA0001.json");

    match client.create_call(&call("+1555")).await {
        Err(TwilioRestError::Api { status: 400, code: 21211, message }) => assert!(message.contains("not a valid")),
        other => panic!("expected Twilio error 21211, got {other:?}"),
    }
    let wrong_token = TwilioRest::new(&base, SID, "wrong").unwrap();
    assert!(matches!(
        wrong_token.create_call(&call("+14155550100")).await,
        Err(TwilioRestError::Api { status: 401, code: 20003, .. })
    ));
    // Nothing listening: a transport error, not a panic.
    let nowhere = TwilioRest::new("http://127.0.0.1:9", SID, TOKEN).unwrap();
    assert!(matches!(nowhere.create_call(&call("+14155550100")).await, Err(TwilioRestError::Transport(_))));
}
