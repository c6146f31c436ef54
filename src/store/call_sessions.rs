//! What a call session leaves in the store besides the call row: its carrier leg (carrier,
//! the carrier's call id, the single-use media stream token), its transcript and its
//! recording's metadata (the WAV itself is a file under the data directory).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::{Db, RowExt, StoreResult};
use crate::domain::{Id, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The gateway's voice.
    Bot,
    /// The person (or machine) on the phone.
    Caller,
}

/// One turn of a conversation; times are milliseconds from the start of the recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    pub speaker: Speaker,
    #[schema(example = "Yes, I'd like to hear more.")]
    pub text: String,
    #[schema(example = 5120)]
    pub start_ms: i64,
    #[schema(example = 6840)]
    pub end_ms: i64,
    /// Recognition confidence 0..1 for caller turns; absent for the bot's own lines.
    pub confidence: Option<f32>,
    /// True when the caller interrupted this (bot) line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordingFile {
    /// Relative to the data directory.
    pub path: String,
    pub bytes: i64,
    pub duration_ms: i64,
}

/// The transcript and recording a finished call stores with its final status.
#[derive(Clone, Debug, Default)]
pub struct Artifacts {
    pub transcript: Option<Vec<Turn>>,
    pub recording: Option<RecordingFile>,
}

pub(super) async fn insert_artifacts(
    conn: &mut AnyConnection,
    account_id: &Id,
    call_id: &Id,
    artifacts: Artifacts,
    now: Timestamp,
) -> StoreResult<()> {
    if let Some(turns) = artifacts.transcript {
        upsert_transcript(&mut *conn, account_id, call_id, &turns, now).await?;
    }
    if let Some(recording) = artifacts.recording {
        sqlx::query(
            "INSERT INTO call_recordings (call_id, account_id, path, bytes, duration_ms, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (call_id) DO UPDATE SET path = excluded.path, \
             bytes = excluded.bytes, duration_ms = excluded.duration_ms",
        )
        .bind(call_id.as_str())
        .bind(account_id.as_str())
        .bind(recording.path)
        .bind(recording.bytes)
        .bind(recording.duration_ms)
        .bind(now.to_db())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn upsert_transcript(
    conn: &mut AnyConnection,
    account_id: &Id,
    call_id: &Id,
    turns: &[Turn],
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO call_transcripts (call_id, account_id, turns, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (call_id) DO UPDATE SET turns = excluded.turns",
    )
    .bind(call_id.as_str())
    .bind(account_id.as_str())
    .bind(serde_json::to_string(turns).unwrap_or_else(|_| "[]".into()))
    .bind(now.to_db())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Saves a live call's transcript so far (after each turn), so a crash loses no finished turn
/// and `GET /v1/calls/{id}/transcript` shows the conversation as it happens.
pub async fn save_transcript(
    db: &Db,
    account_id: &Id,
    call_id: &Id,
    turns: &[Turn],
    now: Timestamp,
) -> StoreResult<()> {
    let mut conn = db.write.acquire().await?;
    upsert_transcript(&mut conn, account_id, call_id, turns, now).await
}

/// A live call's session is still running.
pub async fn heartbeat(db: &Db, call_id: &Id, now: Timestamp) -> StoreResult<()> {
    sqlx::query("UPDATE call_legs SET heartbeat_at = $1 WHERE call_id = $2")
        .bind(now.to_db())
        .bind(call_id.as_str())
        .execute(&db.write)
        .await?;
    Ok(())
}

pub async fn transcript(db: &Db, account_id: &Id, call_id: &Id) -> StoreResult<Option<Vec<Turn>>> {
    let row = sqlx::query("SELECT turns FROM call_transcripts WHERE account_id = $1 AND call_id = $2")
        .bind(account_id.as_str())
        .bind(call_id.as_str())
        .fetch_optional(&db.read)
        .await?;
    row.map(|r| super::json_col(&r, "turns")).transpose()
}

pub async fn recording(db: &Db, account_id: &Id, call_id: &Id) -> StoreResult<Option<RecordingFile>> {
    let row =
        sqlx::query("SELECT path, bytes, duration_ms FROM call_recordings WHERE account_id = $1 AND call_id = $2")
            .bind(account_id.as_str())
            .bind(call_id.as_str())
            .fetch_optional(&db.read)
            .await?;
    row.map(|r| Ok(RecordingFile { path: r.text("path")?, bytes: r.int("bytes")?, duration_ms: r.int("duration_ms")? }))
        .transpose()
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Records that `carrier` is placing the call. Placing it again opens a new leg, with a
/// stream token of its own to hand out.
/// `carrier_id` is the account's carrier account the leg is on (`None`: the simulator or the
/// gateway's default Twilio account).
pub async fn open_leg(
    db: &Db,
    account_id: &Id,
    call_id: &Id,
    carrier: &str,
    carrier_id: Option<&Id>,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO call_legs (call_id, account_id, carrier, carrier_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (call_id) DO UPDATE SET carrier = excluded.carrier, carrier_id = excluded.carrier_id, \
         updated_at = excluded.updated_at, \
         stream_token_hash = NULL, stream_token_expires_at = NULL, stream_token_issued_at = NULL",
    )
    .bind(call_id.as_str())
    .bind(account_id.as_str())
    .bind(carrier)
    .bind(carrier_id.map(Id::as_str))
    .bind(now.to_db())
    .execute(&db.write)
    .await?;
    Ok(())
}

/// A call's leg at its carrier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegRecord {
    pub account_id: Id,
    /// `simulator`, `twilio` or `sip`.
    pub carrier: String,
    /// The carrier's id for the call (Twilio's CallSid), once known.
    pub carrier_call_id: Option<String>,
    /// The account's carrier account (`None`: simulator, or the default Twilio account).
    pub carrier_id: Option<Id>,
}

pub async fn leg(db: &Db, call_id: &Id) -> StoreResult<Option<LegRecord>> {
    let row = sqlx::query("SELECT account_id, carrier, carrier_call_id, carrier_id FROM call_legs WHERE call_id = $1")
        .bind(call_id.as_str())
        .fetch_optional(&db.read)
        .await?;
    row.map(|r| {
        Ok(LegRecord {
            account_id: Id::from_trusted(r.text("account_id")?),
            carrier: r.text("carrier")?,
            carrier_call_id: r.opt_text("carrier_call_id")?,
            carrier_id: r.opt_text("carrier_id")?.map(Id::from_trusted),
        })
    })
    .transpose()
}

/// Mints the single-use token that admits the call's media stream (kept as a hash), valid
/// until `expires_at`; a new token replaces an unused older one.
/// Hands out the leg's media stream token: `None` when it already had one (a replayed
/// webhook), so the token Twilio holds is never replaced.
pub async fn issue_stream_token(
    db: &Db,
    call_id: &Id,
    expires_at: Timestamp,
    now: Timestamp,
) -> StoreResult<Option<String>> {
    // Ids are guessable (time + counter); a token is 256 random bits.
    let token = hex::encode(rand::random::<[u8; 32]>());
    let issued = sqlx::query(
        "UPDATE call_legs SET stream_token_hash = $1, stream_token_expires_at = $2, stream_token_issued_at = $3, \
         updated_at = $3 WHERE call_id = $4 AND stream_token_issued_at IS NULL",
    )
    .bind(token_hash(&token))
    .bind(expires_at.to_db())
    .bind(now.to_db())
    .bind(call_id.as_str())
    .execute(&db.write)
    .await?
    .rows_affected();
    Ok((issued == 1).then_some(token))
}

pub async fn set_carrier_call_id(db: &Db, call_id: &Id, carrier_call_id: &str, now: Timestamp) -> StoreResult<()> {
    sqlx::query("UPDATE call_legs SET carrier_call_id = $1, updated_at = $2 WHERE call_id = $3")
        .bind(carrier_call_id)
        .bind(now.to_db())
        .bind(call_id.as_str())
        .execute(&db.write)
        .await?;
    Ok(())
}

/// The call a carrier's call id belongs to: (account, call, carrier).
pub async fn find_by_carrier_call(db: &Db, carrier: &str, carrier_call_id: &str) -> StoreResult<Option<(Id, Id)>> {
    let row = sqlx::query("SELECT account_id, call_id FROM call_legs WHERE carrier = $1 AND carrier_call_id = $2")
        .bind(carrier)
        .bind(carrier_call_id)
        .fetch_optional(&db.read)
        .await?;
    row.map(|r| Ok((Id::from_trusted(r.text("account_id")?), Id::from_trusted(r.text("call_id")?)))).transpose()
}

/// Spends a media stream token: returns (account, call) if the token is valid, unexpired and
/// unused for `call_id`, and marks it used in the same statement, so a replayed or second
/// stream is refused even across gateway nodes.
pub async fn consume_stream_token(db: &Db, call_id: &Id, token: &str, now: Timestamp) -> StoreResult<Option<Id>> {
    let row = sqlx::query(
        "UPDATE call_legs SET stream_token_hash = NULL, updated_at = $1 \
         WHERE call_id = $2 AND stream_token_hash = $3 AND stream_token_expires_at > $1 RETURNING account_id",
    )
    .bind(now.to_db())
    .bind(call_id.as_str())
    .bind(token_hash(token))
    .fetch_optional(&db.write)
    .await?;
    row.map(|r| Ok(Id::from_trusted(r.text("account_id")?))).transpose()
}

pub async fn set_answered_by(db: &Db, call_id: &Id, answered_by: &str, now: Timestamp) -> StoreResult<()> {
    sqlx::query("UPDATE call_legs SET answered_by = $1, updated_at = $2 WHERE call_id = $3")
        .bind(answered_by)
        .bind(now.to_db())
        .bind(call_id.as_str())
        .execute(&db.write)
        .await?;
    Ok(())
}
