//! `/v1/reports/summary`: the summary of a period as JSON, or as CSV for spreadsheets;
//! `/v1/reports/drift`: policy drift and overrides in a period (R8).

use super::AppState;
use super::error::AppError;
use super::extract::{Caller, Params};
use crate::approvals::DriftReport;
use crate::domain::report::{GroupBy, Summary, SummaryQuery, parse_bound};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Summary parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    /// Start of the period, included: RFC 3339, or a date meaning its midnight UTC. Default: a
    /// year before `to`.
    #[param(schema_with = super::contract::date_or_time)]
    pub from: Option<String>,
    /// End of the period, excluded; same forms. Default: now.
    #[param(schema_with = super::contract::date_or_time)]
    pub to: Option<String>,
    /// `month`, `cost_center` or `department`: one row per group besides the totals.
    #[param(value_type = Option<String>, pattern = "^(month|cost_center|department)$")]
    pub group_by: Option<String>,
    /// `true`: only customer orders (the R4 summary of customer authorizations).
    pub customer_orders: Option<bool>,
    /// `csv` for CSV whatever the Accept header says (for download links).
    #[param(value_type = Option<String>, pattern = "^(csv|json)$")]
    pub format: Option<String>,
}

fn bound(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, AppError> {
    value
        .map(|v| {
            parse_bound(v).ok_or_else(|| {
                AppError::invalid(field, format!("{field}: '{v}' is neither an RFC 3339 time nor a date YYYY-MM-DD"))
            })
        })
        .transpose()
}

/// Turns the query string into a summary query, naming the parameter that is wrong.
pub fn summary_query(q: &SummaryParams) -> Result<SummaryQuery, AppError> {
    let group_by =
        q.group_by.as_deref().map(str::parse::<GroupBy>).transpose().map_err(|e| AppError::invalid("group_by", e))?;
    let (from, to) = (bound("from", q.from.as_deref())?, bound("to", q.to.as_deref())?);
    SummaryQuery::new(from, to, group_by, q.customer_orders.unwrap_or(false), Utc::now())
        .map_err(|e| AppError::invalid("from", e))
}

/// The summary of the tenant's orders over a period (auditor, admin): approved, rejected (and
/// rejected by compliance rules), withdrawn, on hold, approval times, open and overdue orders,
/// escalations. `Accept: text/csv` (or `format=csv`) answers CSV, one row per group.
#[utoipa::path(get, path = "/v1/reports/summary", tag = "reports", params(SummaryParams),
    responses((status = 200, description = "the summary, as JSON or (`Accept: text/csv`, `format=csv`) CSV",
        content((Summary = "application/json"), (String = "text/csv")))))]
pub async fn summary(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<SummaryParams>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let csv = super::extract::wants_csv(q.format.as_deref(), &headers)?;
    let report = s.approvals.summary(&p, summary_query(&q)?).await?;
    if csv {
        let headers = [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"greenlight-summary.csv\""),
        ];
        return Ok((headers, report.to_csv()).into_response());
    }
    Ok(Json(report).into_response())
}

/// Drift report parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DriftParams {
    /// Start of the period, included: RFC 3339, or a date meaning its midnight UTC. Default: a
    /// year before `to`.
    #[param(schema_with = super::contract::date_or_time)]
    pub from: Option<String>,
    /// End of the period, excluded; same forms. Default: now.
    #[param(schema_with = super::contract::date_or_time)]
    pub to: Option<String>,
}

/// Policy drift and overrides in a period (auditor, admin, R8): pending orders the drift check
/// found planned differently from what the current rules would make (with the difference),
/// flags it cleared, and decisions taken by override: approvals revoked, orders released by
/// hand, stages decided by escalation targets.
#[utoipa::path(get, path = "/v1/reports/drift", tag = "reports", params(DriftParams),
    responses((status = 200, body = DriftReport)))]
pub async fn drift(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<DriftParams>,
) -> Result<Json<DriftReport>, AppError> {
    let (from, to) = (bound("from", q.from.as_deref())?, bound("to", q.to.as_deref())?);
    let period = SummaryQuery::new(from, to, None, false, Utc::now()).map_err(|e| AppError::invalid("from", e))?;
    Ok(Json(s.approvals.drift_report(&p, period).await?))
}
