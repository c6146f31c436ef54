//! The per-account quotas (`config::Quotas`), checked before a create.

use super::error::{ApiError, ApiResult};
use crate::app::AppState;
use crate::domain::Id;
use crate::store::quotas::{self, Held};

/// Refuses one more of `what` when the account already holds its quota.
pub async fn check(state: &AppState, account_id: &Id, what: Held) -> ApiResult<()> {
    let q = &state.config.quotas;
    let (limit, name) = match what {
        Held::ApiKeys => (q.api_keys, "API keys"),
        Held::WebhookEndpoints => (q.webhook_endpoints, "webhook endpoints"),
        Held::OpenCampaigns => (q.open_campaigns, "open campaigns"),
        Held::QueuedCalls => (q.queued_calls, "queued calls"),
    };
    if quotas::count(&state.db, account_id, what).await? >= limit {
        return Err(ApiError::QuotaExceeded { what: name, limit });
    }
    Ok(())
}
