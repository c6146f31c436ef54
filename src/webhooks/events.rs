//! Event types and `emit`, the one door through which every event enters the outbox.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{Any, Transaction};
use utoipa::ToSchema;

use crate::domain::{Id, Timestamp};
use crate::store::{RowExt, StoreResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "call.started")]
    CallStarted,
    #[serde(rename = "call.completed")]
    CallCompleted,
    #[serde(rename = "call.failed")]
    CallFailed,
    #[serde(rename = "call.transcript.available")]
    CallTranscriptAvailable,
    #[serde(rename = "call.recording.available")]
    CallRecordingAvailable,
    #[serde(rename = "campaign.started")]
    CampaignStarted,
    #[serde(rename = "campaign.completed")]
    CampaignCompleted,
    #[serde(rename = "campaign.paused")]
    CampaignPaused,
    /// Sent only by `POST /v1/webhooks/{id}/test`, whatever the endpoint subscribes to.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventType {
    /// The types an endpoint may subscribe to (besides `*`).
    pub const SUBSCRIBABLE: [EventType; 8] = [
        EventType::CallStarted,
        EventType::CallCompleted,
        EventType::CallFailed,
        EventType::CallTranscriptAvailable,
        EventType::CallRecordingAvailable,
        EventType::CampaignStarted,
        EventType::CampaignCompleted,
        EventType::CampaignPaused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CallStarted => "call.started",
            EventType::CallCompleted => "call.completed",
            EventType::CallFailed => "call.failed",
            EventType::CallTranscriptAvailable => "call.transcript.available",
            EventType::CallRecordingAvailable => "call.recording.available",
            EventType::CampaignStarted => "campaign.started",
            EventType::CampaignCompleted => "campaign.completed",
            EventType::CampaignPaused => "campaign.paused",
            EventType::WebhookTest => "webhook.test",
        }
    }

    pub fn parse_subscribable(s: &str) -> Option<EventType> {
        EventType::SUBSCRIBABLE.into_iter().find(|t| t.as_str() == s)
    }
}

/// `evt_` + 24 hex, as the spec's payload shows.
pub fn new_event_id() -> String {
    format!("evt_{}", Id::generate())
}

/// Whether an endpoint's subscription list covers an event type.
pub fn subscribed(events: &[String], event_type: EventType) -> bool {
    events.iter().any(|e| e == "*" || e == event_type.as_str())
}

/// Writes an event and one pending delivery per enabled, subscribed endpoint of the
/// account, inside the caller's transaction, so the event exists if and only if the
/// state change that caused it commits. Returns the event id.
pub async fn emit(
    tx: &mut Transaction<'_, Any>,
    account_id: &Id,
    event_type: EventType,
    data: Value,
    now: Timestamp,
) -> StoreResult<String> {
    let endpoints = sqlx::query("SELECT id, events FROM webhook_endpoints WHERE account_id = $1 AND enabled = 1")
        .bind(account_id.as_str())
        .fetch_all(&mut **tx)
        .await?;
    let mut targets = Vec::new();
    for row in endpoints {
        let events: Vec<String> = serde_json::from_str(&row.text("events")?).unwrap_or_default();
        if subscribed(&events, event_type) {
            targets.push(Id::from_trusted(row.text("id")?));
        }
    }
    emit_to(tx, account_id, event_type, data, now, &targets).await
}

/// Like `emit`, to the given endpoints only (used by the test endpoint).
pub async fn emit_to(
    tx: &mut Transaction<'_, Any>,
    account_id: &Id,
    event_type: EventType,
    data: Value,
    now: Timestamp,
    endpoints: &[Id],
) -> StoreResult<String> {
    let id = new_event_id();
    let payload = json!({"id": id, "type": event_type.as_str(), "created": now.to_rfc3339(), "data": data});
    sqlx::query("INSERT INTO webhook_events (id, account_id, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id.as_str())
        .bind(account_id.as_str())
        .bind(event_type.as_str())
        .bind(payload.to_string())
        .bind(now.to_db())
        .execute(&mut **tx)
        .await?;
    for endpoint in endpoints {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, account_id, endpoint_id, event_id, status, attempts, next_attempt_at, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)",
        )
        .bind(Id::generate().as_str())
        .bind(account_id.as_str())
        .bind(endpoint.as_str())
        .bind(id.as_str())
        .bind(now.to_db())
        .execute(&mut **tx)
        .await?;
    }
    Ok(id)
}
