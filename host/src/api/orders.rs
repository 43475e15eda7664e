//! `/v1/orders` and `/v1/inbox`.

use super::AppState;
use super::contract::{Created, segment};
use super::error::AppError;
use super::extract::{Body, Caller, Params};
use crate::approvals::OrderFilter;
use crate::domain::audit::AuditEntry;
use crate::domain::money::Minor;
use crate::domain::order::{
    Line, Order, OrderInput, OrderPatch, OrderStatus, Recurrence, Rejection, SubscriptionState,
};
use crate::domain::plan::{Plan, Verdict};
use crate::domain::step::{PriceAdjustment, RiskFlag};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An order as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    /// Order id.
    pub id: String,
    /// Who asked for it.
    pub requester: String,
    /// Lifecycle status.
    pub status: OrderStatus,
    /// Cost center code.
    pub cost_center: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Customer id.
    pub customer_id: Option<String>,
    /// Vendor id.
    pub vendor_id: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Lines.
    pub lines: Vec<Line>,
    /// Recurrence, for subscriptions.
    pub recurrence: Option<Recurrence>,
    /// Free attributes.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Sum of lines.
    pub subtotal_minor: Minor,
    /// Tax added by steps.
    pub tax_minor: Minor,
    /// Subtotal plus all adjustments.
    pub total_minor: Minor,
    /// Adjustments added by steps.
    pub adjustments: Vec<PriceAdjustment>,
    /// Risk flags.
    pub flags: Vec<RiskFlag>,
    /// The approval plan.
    pub plan: Plan,
    /// For subscriptions: active or inactive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_state: Option<SubscriptionState>,
    /// Why it is on hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<String>,
    /// Who rejected it and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
    /// Created (UTC).
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    pub updated_at: DateTime<Utc>,
    /// Last submitted (UTC).
    pub submitted_at: Option<DateTime<Utc>>,
    /// Approved (UTC).
    pub approved_at: Option<DateTime<Utc>>,
    /// The ERP's reference, once released through a connector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    /// Increments on every change.
    pub version: u64,
}

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        let (tax, total) = (o.tax_minor(), o.total_minor());
        OrderView {
            id: o.id,
            requester: o.requester,
            status: o.status,
            cost_center: o.input.cost_center,
            department: o.input.department,
            customer_id: o.input.customer_id,
            vendor_id: o.input.vendor_id,
            currency: o.input.currency.to_string(),
            lines: o.input.lines,
            recurrence: o.input.recurrence,
            attributes: o.input.attributes,
            subtotal_minor: o.subtotal_minor,
            tax_minor: tax,
            total_minor: total,
            adjustments: o.adjustments,
            flags: o.flags,
            plan: o.plan,
            subscription_state: o.subscription.map(|s| s.state),
            hold_reason: o.hold_reason,
            rejection: o.rejection,
            created_at: o.created_at,
            updated_at: o.updated_at,
            submitted_at: o.submitted_at,
            approved_at: o.approved_at,
            external_ref: o.external_ref,
            version: o.version,
        }
    }
}

type OrderResult = Result<Json<OrderView>, AppError>;

/// Creates a draft.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = OrderInput,
    responses((status = 201, body = OrderView), (status = 422, description = "invalid field")))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(input): Body<OrderInput>,
) -> Result<Created<OrderView>, AppError> {
    let order = s.approvals.create_order(&p, input).await?;
    Ok(Created(format!("/v1/orders/{}", segment(&order.id)), order.into()))
}

/// One order.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", responses((status = 200, body = OrderView), (status = 404)))]
pub async fn get(State(s): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> OrderResult {
    Ok(Json(s.approvals.order(&p, &id).await?.into()))
}

/// Edits an order; a pending one is re-evaluated and its decisions reset.
#[utoipa::path(patch, path = "/v1/orders/{id}", tag = "orders", request_body = OrderPatch, responses((status = 200, body = OrderView)))]
pub async fn edit(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(patch): Body<OrderPatch>,
) -> OrderResult {
    Ok(Json(s.approvals.edit(&p, &id, patch).await?.into()))
}

/// Submits for approval.
#[utoipa::path(post, path = "/v1/orders/{id}/submit", tag = "orders", responses((status = 200, body = OrderView)))]
pub async fn submit(State(s): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> OrderResult {
    Ok(Json(s.approvals.submit(&p, &id).await?.into()))
}

/// The body of a decision.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Stage key.
    pub stage: String,
    /// `approve` or `reject`.
    pub decision: Verdict,
    /// Required for `reject`.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Approves or rejects a stage.
#[utoipa::path(post, path = "/v1/orders/{id}/decisions", tag = "orders", request_body = DecisionBody,
    responses((status = 200, body = OrderView), (status = 403), (status = 409), (status = 422)))]
pub async fn decide(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(b): Body<DecisionBody>,
) -> OrderResult {
    if b.comment.as_ref().is_some_and(|c| c.len() > 4000) {
        return Err(AppError::invalid("comment", "comment: at most 4000 bytes"));
    }
    Ok(Json(s.approvals.decide(&p, &id, b.stage, b.decision, b.comment).await?.into()))
}

/// The requester withdraws the order.
#[utoipa::path(post, path = "/v1/orders/{id}/withdraw", tag = "orders", responses((status = 200, body = OrderView)))]
pub async fn withdraw(State(s): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> OrderResult {
    Ok(Json(s.approvals.withdraw(&p, &id).await?.into()))
}

/// The body of a revocation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// Why the approval was wrong.
    pub reason: String,
}

/// An admin revokes an approval; the order goes back to pending.
#[utoipa::path(post, path = "/v1/orders/{id}/revoke", tag = "orders", request_body = RevokeBody, responses((status = 200, body = OrderView)))]
pub async fn revoke(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Body(b): Body<RevokeBody>,
) -> OrderResult {
    Ok(Json(s.approvals.revoke(&p, &id, b.reason).await?.into()))
}

/// Admin or finance releases an approved order.
#[utoipa::path(post, path = "/v1/orders/{id}/release", tag = "orders", responses((status = 200, body = OrderView)))]
pub async fn release(State(s): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> OrderResult {
    Ok(Json(s.approvals.release(&p, &id).await?.into()))
}

/// Pauses a subscription.
#[utoipa::path(post, path = "/v1/orders/{id}/deactivate", tag = "orders", responses((status = 200, body = OrderView)))]
pub async fn deactivate(State(s): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> OrderResult {
    Ok(Json(s.approvals.deactivate(&p, &id).await?.into()))
}

/// Resumes a subscription without new approval.
#[utoipa::path(post, path = "/v1/orders/{id}/reactivate", tag = "orders", responses((status = 200, body = OrderView)))]
pub async fn reactivate(State(s): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> OrderResult {
    Ok(Json(s.approvals.reactivate(&p, &id).await?.into()))
}

/// The order's audit trail.
#[utoipa::path(get, path = "/v1/orders/{id}/audit", tag = "orders", responses((status = 200, body = [AuditEntry])))]
pub async fn audit(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    Ok(Json(s.approvals.order_audit(&p, &id).await?))
}

/// Filters of the request view.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Status.
    #[param(value_type = Option<OrderStatus>)]
    pub status: Option<String>,
    /// Cost center code.
    pub cost_center: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Budget category of any line.
    pub budget_category: Option<String>,
    /// Requester's user name.
    pub requester: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of orders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    /// Newest first.
    pub orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The request view (R10).
#[utoipa::path(get, path = "/v1/orders", tag = "orders", params(ListQuery), responses((status = 200, body = OrderPage)))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<ListQuery>,
) -> Result<Json<OrderPage>, AppError> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<OrderStatus>)
        .transpose()
        .map_err(|m| AppError::invalid("status", format!("status: {m}")))?;
    let limit = super::extract::page_limit(q.limit)?;
    let filter = OrderFilter {
        status,
        cost_center: q.cost_center,
        department: q.department,
        budget_category: q.budget_category,
        requester: q.requester,
        limit,
        cursor: q.cursor,
        ..OrderFilter::default()
    };
    let (orders, next_cursor) = s.approvals.list(&p, filter).await?;
    Ok(Json(OrderPage { orders: orders.into_iter().map(OrderView::from).collect(), next_cursor }))
}

/// The caller's inbox.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Inbox {
    /// Orders with a stage the caller may decide now, oldest first.
    pub orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Paging of the inbox.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Everything awaiting the caller (R2), page by page.
#[utoipa::path(get, path = "/v1/inbox", tag = "orders", params(InboxQuery), responses((status = 200, body = Inbox)))]
pub async fn inbox(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<InboxQuery>,
) -> Result<Json<Inbox>, AppError> {
    let limit = super::extract::page_limit(q.limit)?;
    let (orders, next_cursor) = s.approvals.inbox(&p, limit, q.cursor).await?;
    Ok(Json(Inbox { orders: orders.into_iter().map(OrderView::from).collect(), next_cursor }))
}
