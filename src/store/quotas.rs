//! Counts behind the per-account quotas (`config::Quotas`): what an account holds now of each
//! limited thing. The check is a count before the insert, so two racing requests may both
//! pass at the edge; quotas bound growth, they are not a ledger.

use super::{Db, RowExt, StoreResult};
use crate::domain::Id;

/// A limited kind of thing an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// API keys not revoked.
    ApiKeys,
    WebhookEndpoints,
    /// Campaigns not completed or cancelled.
    OpenCampaigns,
    /// Calls waiting for a line (`queued`).
    QueuedCalls,
}

impl Held {
    fn sql(self) -> &'static str {
        match self {
            Held::ApiKeys => {
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM api_keys WHERE account_id = $1 AND revoked_at IS NULL"
            }
            Held::WebhookEndpoints => {
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM webhook_endpoints WHERE account_id = $1"
            }
            Held::OpenCampaigns => {
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM campaigns WHERE account_id = $1 \
                 AND status IN ('scheduled', 'active', 'paused')"
            }
            // Kept per status with every call write (store::calls), so no scan of a big queue.
            Held::QueuedCalls => {
                "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM call_counts WHERE account_id = $1 AND status = 'queued'"
            }
        }
    }
}

/// How many of `what` the account holds now.
pub async fn count(db: &Db, account_id: &Id, what: Held) -> StoreResult<i64> {
    sqlx::query(what.sql()).bind(account_id.as_str()).fetch_one(&db.read).await?.int("n")
}
