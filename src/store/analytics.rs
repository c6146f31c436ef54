//! Call and campaign statistics, aggregated in SQL per UTC day and folded into
//! weeks or months in Rust (date arithmetic differs too much between the databases).
//!
//! Definitions shared by every figure:
//! - a call is counted when its `effective_at` (started, else scheduled, else created)
//!   is inside the requested range;
//! - a *completed* call has status `completed`; a *successful* call is a completed call
//!   with outcome `successful`;
//! - average durations are over calls that have a duration, rounded to whole seconds;
//! - rates are percentages rounded half up to one decimal, 0 when the divisor is 0.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use serde::Serialize;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Arg, Db, RowExt, Sql, StoreError, StoreResult};
use crate::domain::status::{CallStatus, Outcome};
use crate::domain::{Id, Timestamp};

/// `part / whole * 100`, rounded half up to one decimal; 0 when `whole` is 0.
pub fn percent(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    // Integer arithmetic in tenths, so 2/3 is exactly 66.7 and halves round up.
    let tenths = (i128::from(part) * 2000 + i128::from(whole)) / (i128::from(whole) * 2);
    tenths as f64 / 10.0
}

/// `sum / count` rounded half up to an integer; 0 when `count` is 0.
pub fn mean(sum: i64, count: i64) -> i64 {
    if count <= 0 {
        return 0;
    }
    ((i128::from(sum) * 2 + i128::from(count)).div_euclid(i128::from(count) * 2)) as i64
}

/// The mean of one-decimal values (e.g. rates), rounded half up to one decimal.
pub fn mean_of_tenths(values: &[f64]) -> f64 {
    let tenths: i64 = values.iter().map(|v| (v * 10.0).round() as i64).sum();
    mean(tenths, values.len() as i64) as f64 / 10.0
}

/// The time buckets of `callsByTime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    /// ISO weeks, starting on Monday.
    Week,
    Month,
}

impl GroupBy {
    pub const EXPECTED: &'static str = "day, week, month";

    pub fn parse(s: &str) -> Option<GroupBy> {
        match s {
            "day" => Some(GroupBy::Day),
            "week" => Some(GroupBy::Week),
            "month" => Some(GroupBy::Month),
            _ => None,
        }
    }

    /// The first day of the period that contains `day`.
    pub fn period_start(self, day: Date) -> Date {
        match self {
            GroupBy::Day => day,
            GroupBy::Week => day - jiff::Span::new().days(i64::from(day.weekday().to_monday_zero_offset())),
            GroupBy::Month => day.first_of_month(),
        }
    }
}

/// Which calls to count.
#[derive(Clone, Debug, Default)]
pub struct CallFilter {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub campaign_id: Option<Id>,
}

impl CallFilter {
    /// Appends `FROM calls WHERE ...` for the account and this filter.
    fn push_from_where(&self, sql: &mut Sql, account_id: &Id) {
        sql.push_with(" FROM calls WHERE account_id = ?", [account_id.as_str().into()]);
        if let Some(start) = self.start {
            sql.push_with(" AND effective_at >= ?", [start.to_db().into()]);
        }
        if let Some(end) = self.end {
            sql.push_with(" AND effective_at <= ?", [end.to_db().into()]);
        }
        if let Some(campaign_id) = &self.campaign_id {
            sql.push_with(" AND campaign_id = ?", [campaign_id.as_str().into()]);
        }
    }
}

/// The counters every aggregate query returns, named by these column aliases.
fn counter_columns() -> String {
    let completed = CallStatus::Completed.as_str();
    let successful = Outcome::Successful.as_str();
    format!(
        "CAST(COUNT(*) AS BIGINT) AS total, \
         CAST(SUM(CASE WHEN status = '{completed}' THEN 1 ELSE 0 END) AS BIGINT) AS completed, \
         CAST(SUM(CASE WHEN status = '{completed}' AND outcome = '{successful}' THEN 1 ELSE 0 END) AS BIGINT) AS successful, \
         CAST(SUM(duration) AS BIGINT) AS duration_sum, \
         CAST(COUNT(duration) AS BIGINT) AS duration_count"
    )
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    total: i64,
    completed: i64,
    successful: i64,
    duration_sum: i64,
    duration_count: i64,
}

impl Counters {
    fn from_row(row: &AnyRow) -> StoreResult<Counters> {
        // SUM over no rows is NULL.
        Ok(Counters {
            total: row.int("total")?,
            completed: row.opt_int("completed")?.unwrap_or(0),
            successful: row.opt_int("successful")?.unwrap_or(0),
            duration_sum: row.opt_int("duration_sum")?.unwrap_or(0),
            duration_count: row.int("duration_count")?,
        })
    }

    fn add(&mut self, other: Counters) {
        self.total += other.total;
        self.completed += other.completed;
        self.successful += other.successful;
        self.duration_sum += other.duration_sum;
        self.duration_count += other.duration_count;
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallStatistics {
    /// Calls in the range.
    #[schema(example = 1284)]
    pub total_calls: i64,
    /// Calls in the range with status `completed`.
    #[schema(example = 1156)]
    pub completed_calls: i64,
    /// Mean duration in seconds of the calls that have a duration, rounded to an integer; 0 when none.
    #[schema(example = 204)]
    pub avg_duration: i64,
    /// Completed calls with outcome `successful` / `completedCalls` * 100, one decimal; 0 when none completed.
    #[schema(example = 76.5)]
    pub success_rate: f64,
    /// Calls in the range by outcome (calls without an outcome yet are not counted). Every outcome is present,
    /// zeros included: successful, unsuccessful, noAnswer, busy, voicemail, rejected, callbackRequested,
    /// optedOut, failed.
    #[schema(value_type = Object,
        example = json!({"successful": 884, "noAnswer": 156, "voicemail": 89, "rejected": 27}))]
    pub calls_by_outcome: BTreeMap<&'static str, i64>,
    /// Calls per period, oldest first; only periods with calls appear.
    pub calls_by_time: Vec<CallsInPeriod>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallsInPeriod {
    /// First day of the period (`YYYY-MM-DD`, UTC): the day, the Monday of the ISO week, or the 1st of the month.
    #[schema(example = "2025-05-01")]
    pub date: String,
    #[schema(example = 42)]
    pub calls: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignPerformanceReport {
    /// One entry per campaign (newest first), with the calls of that campaign in the range.
    pub campaigns: Vec<CampaignPerformance>,
    pub overall: OverallPerformance,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignPerformance {
    pub id: Id,
    #[schema(example = "Summer Promotion")]
    pub name: String,
    /// The campaign's calls in the range.
    #[schema(example = 152)]
    pub total_calls: i64,
    /// Of those, calls with status `completed`.
    #[schema(example = 145)]
    pub completed_calls: i64,
    /// Of those, completed calls with outcome `successful`.
    #[schema(example = 112)]
    pub successful_calls: i64,
    /// `successfulCalls / completedCalls * 100`, one decimal; 0 when none completed.
    #[schema(example = 73.7)]
    pub conversion_rate: f64,
    /// Mean duration in seconds of its calls that have a duration, rounded; 0 when none.
    #[schema(example = 215)]
    pub avg_duration: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverallPerformance {
    /// Campaigns in `campaigns`.
    #[schema(example = 5)]
    pub total_campaigns: i64,
    /// Sum of their `totalCalls`.
    #[schema(example = 687)]
    pub total_calls: i64,
    /// Mean of the `conversionRate` of the campaigns that have at least one completed call, one decimal;
    /// 0 when none has.
    #[schema(example = 68.2)]
    pub avg_conversion_rate: f64,
    /// Mean duration in seconds over all their counted calls that have a duration, rounded; 0 when none.
    #[schema(example = 198)]
    pub avg_duration: i64,
}

pub async fn call_stats(
    db: &Db,
    account_id: &Id,
    filter: &CallFilter,
    group_by: GroupBy,
) -> StoreResult<CallStatistics> {
    let mut per_day = Sql::new(&format!("SELECT SUBSTR(effective_at, 1, 10) AS day, {}", counter_columns()));
    filter.push_from_where(&mut per_day, account_id);
    per_day.push(" GROUP BY SUBSTR(effective_at, 1, 10)");
    let mut totals = Counters::default();
    let mut buckets: BTreeMap<Date, i64> = BTreeMap::new();
    for row in per_day.query().fetch_all(&db.read).await? {
        let counters = Counters::from_row(&row)?;
        let day_text = row.text("day")?;
        let day: Date =
            day_text.parse().map_err(|e| StoreError::Corrupt(format!("effective_at day '{day_text}': {e}")))?;
        *buckets.entry(group_by.period_start(day)).or_default() += counters.total;
        totals.add(counters);
    }

    let mut by_outcome = Sql::new("SELECT outcome, CAST(COUNT(*) AS BIGINT) AS n");
    filter.push_from_where(&mut by_outcome, account_id);
    by_outcome.push(" AND outcome IS NOT NULL GROUP BY outcome");
    let mut calls_by_outcome: BTreeMap<&'static str, i64> = Outcome::ALL.iter().map(|o| (o.as_str(), 0)).collect();
    for row in by_outcome.query().fetch_all(&db.read).await? {
        // Outcomes this version does not know are left out rather than failing the report.
        if let Some(outcome) = Outcome::parse(&row.text("outcome")?) {
            *calls_by_outcome.entry(outcome.as_str()).or_default() += row.int("n")?;
        }
    }

    Ok(CallStatistics {
        total_calls: totals.total,
        completed_calls: totals.completed,
        avg_duration: mean(totals.duration_sum, totals.duration_count),
        success_rate: percent(totals.successful, totals.completed),
        calls_by_outcome,
        calls_by_time: buckets
            .into_iter()
            .map(|(date, calls)| CallsInPeriod { date: date.to_string(), calls })
            .collect(),
    })
}

/// Performance of the account's campaigns (all, or those of `campaign_ids` that exist
/// in the account), newest campaign first, counting their calls in the date range.
pub async fn campaign_performance(
    db: &Db,
    account_id: &Id,
    campaign_ids: Option<&[Id]>,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
) -> StoreResult<CampaignPerformanceReport> {
    let mut campaigns_sql = Sql::new("SELECT id, name FROM campaigns WHERE account_id = ");
    let a = campaigns_sql.arg(account_id.as_str());
    campaigns_sql.push(&a);
    let mut calls_sql = Sql::new(&format!("SELECT campaign_id, {}", counter_columns()));
    CallFilter { start, end, campaign_id: None }.push_from_where(&mut calls_sql, account_id);
    calls_sql.push(" AND campaign_id IS NOT NULL");
    if let Some(ids) = campaign_ids {
        if ids.is_empty() {
            return Ok(CampaignPerformanceReport { campaigns: Vec::new(), overall: overall(&[], Counters::default()) });
        }
        push_in(&mut campaigns_sql, "id", ids);
        push_in(&mut calls_sql, "campaign_id", ids);
    }
    campaigns_sql.push(" ORDER BY created_at DESC, id DESC");
    calls_sql.push(" GROUP BY campaign_id");

    let mut counters: HashMap<String, Counters> = HashMap::new();
    for row in calls_sql.query().fetch_all(&db.read).await? {
        counters.insert(row.text("campaign_id")?, Counters::from_row(&row)?);
    }
    let mut totals = Counters::default();
    let mut campaigns = Vec::new();
    for row in campaigns_sql.query().fetch_all(&db.read).await? {
        let id = row.text("id")?;
        let c = counters.get(&id).copied().unwrap_or_default();
        totals.add(c);
        campaigns.push(CampaignPerformance {
            id: Id::from_trusted(id),
            name: row.text("name")?,
            total_calls: c.total,
            completed_calls: c.completed,
            successful_calls: c.successful,
            conversion_rate: percent(c.successful, c.completed),
            avg_duration: mean(c.duration_sum, c.duration_count),
        });
    }
    let overall = overall(&campaigns, totals);
    Ok(CampaignPerformanceReport { campaigns, overall })
}

/// The `overall` block: the conversion-rate mean is over campaigns with at least one
/// completed call (a campaign that has not called anyone has no rate, not a 0% rate).
fn overall(campaigns: &[CampaignPerformance], totals: Counters) -> OverallPerformance {
    let rates: Vec<f64> = campaigns.iter().filter(|c| c.completed_calls > 0).map(|c| c.conversion_rate).collect();
    OverallPerformance {
        total_campaigns: campaigns.len() as i64,
        total_calls: totals.total,
        avg_conversion_rate: mean_of_tenths(&rates),
        avg_duration: mean(totals.duration_sum, totals.duration_count),
    }
}

fn push_in(sql: &mut Sql, column: &str, ids: &[Id]) {
    sql.push(&format!(" AND {column} IN ("));
    sql.push_list(ids.iter().map(|id| Arg::from(id.as_str())));
    sql.push(")");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_half_up_to_one_decimal() {
        assert_eq!(percent(2, 3), 66.7);
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(1, 16), 6.3, "6.25 rounds up");
        assert_eq!(percent(45, 152), 29.6, "the spec's progress example");
        assert_eq!(percent(3, 3), 100.0);
        assert_eq!(percent(0, 5), 0.0);
        assert_eq!(percent(5, 0), 0.0);
    }

    #[test]
    fn means_round_half_up() {
        assert_eq!(mean(5, 2), 3);
        assert_eq!(mean(7, 3), 2);
        assert_eq!(mean(0, 0), 0);
        assert_eq!(mean_of_tenths(&[66.7, 50.0]), 58.4, "58.35 rounds up");
        assert_eq!(mean_of_tenths(&[]), 0.0);
    }

    #[test]
    fn periods_start_on_monday_and_the_first_of_the_month() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        // 2025-05-04 is a Sunday, 2025-05-05 a Monday.
        assert_eq!(GroupBy::Week.period_start(d("2025-05-04")), d("2025-04-28"));
        assert_eq!(GroupBy::Week.period_start(d("2025-05-05")), d("2025-05-05"));
        assert_eq!(GroupBy::Week.period_start(d("2025-05-11")), d("2025-05-05"));
        assert_eq!(GroupBy::Month.period_start(d("2025-05-31")), d("2025-05-01"));
        assert_eq!(GroupBy::Day.period_start(d("2025-05-31")), d("2025-05-31"));
    }
}
