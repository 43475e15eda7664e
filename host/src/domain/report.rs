//! The summary report (R10, R4): what it counts, over which period, grouped how. The store
//! computes the figures in the database; this module says what they mean.
//!
//! Over a period `[from, to)`:
//! - `approved`, `rejected`, `withdrawn` count orders whose outcome fell in the period (approval
//!   time for approved and released orders, the rejection or withdrawal otherwise);
//! - `rejected_compliance` counts the rejected ones whose rejection came from a compliance rule:
//!   the step that rejected the order was one, or an approver rejected a stage that one added. A
//!   step is a compliance rule when the tenant marked it so on its extension settings
//!   (`compliance: true`);
//! - `avg_`, `median_` and `p90_approval_seconds` are over the approved ones, from their last
//!   submission to their approval, in whole seconds; median and p90 by nearest rank;
//! - `on_hold`, `open_now` and `overdue_now` count, among the orders submitted in the period,
//!   those on hold now, waiting for a decision now, and waiting past a stage's due time now;
//! - `escalations` counts stages escalated in the period.
//!
//! Grouped by month, outcomes fall in the month of the outcome, the snapshot counts in the month
//! of submission and escalations in the month they happened.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

/// How a summary's rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Calendar month in UTC, `YYYY-MM`.
    Month,
    /// The order's cost center.
    CostCenter,
    /// The order's department.
    Department,
}

impl GroupBy {
    /// The name in the query string.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Month => "month",
            GroupBy::CostCenter => "cost_center",
            GroupBy::Department => "department",
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [GroupBy::Month, GroupBy::CostCenter, GroupBy::Department]
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("'{s}' is no grouping: use month, cost_center or department"))
    }
}

/// The longest period one summary covers; a longer one is refused rather than scanned.
pub const MAX_PERIOD_DAYS: i64 = 3660;

/// What a summary is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryQuery {
    /// Start of the period, included.
    pub from: DateTime<Utc>,
    /// End of the period, excluded.
    pub to: DateTime<Utc>,
    /// Rows per group besides the total; `None` gives only the total.
    pub group_by: Option<GroupBy>,
    /// Only customer orders (those naming a customer): the R4 summary of customer
    /// authorizations approved and rejected.
    pub customer_orders: bool,
}

impl SummaryQuery {
    /// A query over `[from, to)`; the period defaults to the year up to `now`. Refuses an empty
    /// or reversed period and one longer than [`MAX_PERIOD_DAYS`].
    pub fn new(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        group_by: Option<GroupBy>,
        customer_orders: bool,
        now: DateTime<Utc>,
    ) -> Result<SummaryQuery, String> {
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - TimeDelta::days(365));
        if from >= to {
            return Err(format!("the period is empty: 'from' ({from}) must come before 'to' ({to})"));
        }
        if to - from > TimeDelta::days(MAX_PERIOD_DAYS) {
            return Err(format!("the period is longer than {MAX_PERIOD_DAYS} days: ask for a shorter one"));
        }
        Ok(SummaryQuery { from, to, group_by, customer_orders })
    }
}

/// Parses a period bound: an RFC 3339 time, or a date meaning its midnight in UTC, in the years
/// 1970 to 9999 (so a day or a year can always be added or taken away).
pub fn parse_bound(s: &str) -> Option<DateTime<Utc>> {
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_time(chrono::NaiveTime::MIN).and_utc(),
    };
    (1970..=9999).contains(&chrono::Datelike::year(&t)).then_some(t)
}

/// The figures of one group, or of the whole period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Figures {
    /// Approved in the period (released ones included).
    pub approved: u64,
    /// Rejected in the period.
    pub rejected: u64,
    /// Of those, rejected by or on a stage of a compliance rule.
    pub rejected_compliance: u64,
    /// Withdrawn in the period.
    pub withdrawn: u64,
    /// Submitted in the period and on hold now.
    pub on_hold: u64,
    /// Submitted in the period and waiting for a decision now.
    pub open_now: u64,
    /// Of those, past a stage's due time now.
    pub overdue_now: u64,
    /// Stages escalated in the period.
    pub escalations: u64,
    /// Mean seconds from submission to approval; `None` without approvals.
    pub avg_approval_seconds: Option<i64>,
    /// Median of the same, by nearest rank.
    pub median_approval_seconds: Option<i64>,
    /// 90th percentile of the same, by nearest rank.
    pub p90_approval_seconds: Option<i64>,
}

/// The rank (1-based) of the `pct`-th percentile among `n` sorted values, by nearest rank:
/// the smallest rank whose share of the values reaches `pct` percent.
pub fn nearest_rank(n: u64, pct: u64) -> u64 {
    (n * pct).div_ceil(100).max(1)
}

/// One row of a grouped summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Group {
    /// The month (`YYYY-MM`), cost center or department; `null` for orders without one.
    pub key: Option<String>,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// `GET /v1/reports/summary`: the period, its totals and, when grouped, one row per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Start of the period, included.
    pub from: DateTime<Utc>,
    /// End of the period, excluded.
    pub to: DateTime<Utc>,
    /// The grouping asked for.
    pub group_by: Option<GroupBy>,
    /// Whether only customer orders were counted.
    pub customer_orders: bool,
    /// The totals over the whole period.
    #[serde(flatten)]
    pub total: Figures,
    /// One row per group, in key order (empty without a grouping).
    pub groups: Vec<Group>,
}

/// The columns of the CSV, in order.
const COLUMNS: &str = "group,approved,rejected,rejected_compliance,withdrawn,on_hold,open_now,overdue_now,escalations,avg_approval_seconds,median_approval_seconds,p90_approval_seconds";

impl Summary {
    /// One line per group, then the total (group `total`). A group's key is quoted when it holds
    /// a comma, a quote or a line break, and a key that a spreadsheet would run as a formula
    /// (`=`, `+`, `-`, `@`) is prefixed with `'`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(COLUMNS);
        out.push('\n');
        for g in &self.groups {
            row(&mut out, g.key.as_deref().unwrap_or(""), &g.figures);
        }
        row(&mut out, "total", &self.total);
        out
    }
}

fn row(out: &mut String, key: &str, f: &Figures) {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    out.push_str(&cell(key));
    for v in [
        f.approved,
        f.rejected,
        f.rejected_compliance,
        f.withdrawn,
        f.on_hold,
        f.open_now,
        f.overdue_now,
        f.escalations,
    ] {
        out.push(',');
        out.push_str(&v.to_string());
    }
    for v in [f.avg_approval_seconds, f.median_approval_seconds, f.p90_approval_seconds] {
        out.push(',');
        out.push_str(&opt(v));
    }
    out.push('\n');
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break; a leading `=`, `+`, `-`
/// or `@` (a spreadsheet formula) is prefixed with `'`.
pub(crate) fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(cell("CC-1"), "CC-1");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    #[test]
    fn nearest_rank_takes_the_smallest_rank_that_reaches_the_share() {
        assert_eq!(nearest_rank(1, 50), 1);
        assert_eq!(nearest_rank(2, 50), 1);
        assert_eq!(nearest_rank(3, 50), 2);
        assert_eq!(nearest_rank(10, 90), 9);
        assert_eq!(nearest_rank(11, 90), 10);
        assert_eq!(nearest_rank(100, 90), 90);
    }

    #[test]
    fn a_period_must_be_forward_and_bounded() {
        let now = parse_bound("2026-06-01").expect("a date");
        let q = SummaryQuery::new(None, None, None, false, now).expect("the default period");
        assert_eq!((q.to - q.from).num_days(), 365);
        let (a, b) = (parse_bound("2026-01-01"), parse_bound("2026-02-01T00:00:00Z"));
        assert!(SummaryQuery::new(b, a, None, false, now).is_err());
        assert!(SummaryQuery::new(a, a, None, false, now).is_err());
        assert!(SummaryQuery::new(parse_bound("2000-01-01"), a, None, false, now).is_err());
        assert!(SummaryQuery::new(a, b, Some(GroupBy::Month), true, now).is_ok());
        assert_eq!(parse_bound("2026-13-01"), None);
        assert_eq!(parse_bound("+262142-12-31"), None);
        assert_eq!(parse_bound("-262143-01-01"), None);
        assert!(parse_bound("9999-12-31T23:59:59Z").is_some_and(|t| t + TimeDelta::days(1) > t));
        assert_eq!("week".parse::<GroupBy>().map_err(|e| e.contains("month")), Err(true));
    }
}
