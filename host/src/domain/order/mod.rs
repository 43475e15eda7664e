//! Orders: what a requester asks for, its lines, totals and lifecycle status.

use super::adjustment::{PriceAdjustment, PriceKind};
use super::flag::RiskFlag;
use super::money::{Currency, MAX_AMOUNT_MINOR, Minor, checked_sum, within_bounds};
use super::plan::Plan;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// Most lines one order may carry; keeps evaluation and storage bounded.
pub const MAX_LINES: usize = 500;
/// Largest quantity on one line.
pub const MAX_QUANTITY: i64 = 1_000_000_000;
const MAX_TEXT: usize = 1_000;
const MAX_CODE: usize = 128;
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// Deepest nesting of a free-form JSON document a client or an extension may store (attributes,
/// configurations). The store's reader parses whole orders, which wrap attributes in a few
/// more levels, with serde_json's limit of 128; this keeps every stored document readable.
pub const MAX_JSON_DEPTH: usize = 32;

/// Where an order is in its life. See the transition table in `machine.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Being written; nothing has been evaluated.
    Draft,
    /// Evaluated; at least one stage is waiting for a decision.
    PendingApproval,
    /// Every stage approved (or none was needed).
    Approved,
    /// Handed over for fulfilment (ERP); final.
    Released,
    /// A step or an approver rejected it; final.
    Rejected,
    /// The requester took it back; final.
    Withdrawn,
    /// A step failed or asked for a hold; never approved until re-evaluated.
    OnHold,
}

impl OrderStatus {
    /// The snake_case name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Draft => "draft",
            OrderStatus::PendingApproval => "pending_approval",
            OrderStatus::Approved => "approved",
            OrderStatus::Released => "released",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Withdrawn => "withdrawn",
            OrderStatus::OnHold => "on_hold",
        }
    }

    /// Every status, for metrics and filters.
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Draft,
        OrderStatus::PendingApproval,
        OrderStatus::Approved,
        OrderStatus::Released,
        OrderStatus::Rejected,
        OrderStatus::Withdrawn,
        OrderStatus::OnHold,
    ];
}

impl std::str::FromStr for OrderStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("'{s}' is not a status: use one of draft, pending_approval, approved, released, rejected, withdrawn, on_hold"))
    }
}

/// Whether a subscription (recurring order) currently runs. Separate from the status: an
/// approved subscription stays approved while inactive (R3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    /// Recurs.
    Active,
    /// Paused; reactivating never needs approval again once approved.
    Inactive,
}

/// How often a subscription recurs, as an ISO 8601 period (`P1M`, `P1Y`, `P2W`, `P30D`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    /// ISO 8601 period: `P` then a number (1 to 9999) and one of D, W, M, Y.
    #[schema(pattern = "^P[1-9][0-9]{0,3}[DWMY]$")]
    pub interval: String,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Stock-keeping unit or article number.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub sku: String,
    /// Free text shown to approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    pub description: Option<String>,
    /// Units ordered: 1 to 10^9.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub quantity: i64,
    /// Price of one unit in minor units: 0 to 10^15, and quantity × price at most 10^15 too
    /// (the largest amount an order may carry).
    #[schema(value_type = i64, minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub unit_price_minor: Minor,
    /// Tax category, read by tax steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub tax_category: Option<String>,
    /// Budget category, used for filters and budget steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub budget_category: Option<String>,
}

/// The part of an order its requester writes: the body of `POST /v1/orders`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// Cost center code; with one, its manager approves first (R1).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub cost_center: Option<String>,
    /// Department, for routing rules and filters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub department: Option<String>,
    /// Customer this order is for (customer authorization flow, R4).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub customer_id: Option<String>,
    /// Vendor supplying the goods (vendor eligibility, R5).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub vendor_id: Option<String>,
    /// ISO 4217 code every amount of the order is in.
    #[schema(value_type = String, example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Currency,
    /// What is ordered; 1 to 500 lines.
    #[schema(min_items = 1, max_items = 500)]
    pub lines: Vec<Line>,
    /// Present for subscriptions (recurring orders, R3).
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    /// Free attributes scripts may read.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A partial edit: the body of `PATCH /v1/orders/{id}`. A field that is present replaces the
/// order's; `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPatch {
    /// Replaces the cost center.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "\\S")]
    pub cost_center: Option<Option<String>>,
    /// Replaces the department.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "\\S")]
    pub department: Option<Option<String>>,
    /// Replaces the customer.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "\\S")]
    pub customer_id: Option<Option<String>>,
    /// Replaces the vendor.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "\\S")]
    pub vendor_id: Option<Option<String>>,
    /// Replaces the currency.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[A-Z]{3}$")]
    pub currency: Option<Currency>,
    /// Replaces all lines (1 to 500).
    #[serde(default)]
    #[schema(min_items = 1, max_items = 500)]
    pub lines: Option<Vec<Line>>,
    /// Replaces (or with null removes) the recurrence.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Recurrence>)]
    pub recurrence: Option<Option<Recurrence>>,
    /// Replaces the attributes.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl OrderPatch {
    /// The input after this patch; the caller validates the result.
    pub fn apply_to(self, mut input: OrderInput) -> OrderInput {
        if let Some(v) = self.cost_center {
            input.cost_center = v;
        }
        if let Some(v) = self.department {
            input.department = v;
        }
        if let Some(v) = self.customer_id {
            input.customer_id = v;
        }
        if let Some(v) = self.vendor_id {
            input.vendor_id = v;
        }
        if let Some(v) = self.currency {
            input.currency = v;
        }
        if let Some(v) = self.lines {
            input.lines = v;
        }
        if let Some(v) = self.recurrence {
            input.recurrence = v;
        }
        if let Some(v) = self.attributes {
            input.attributes = v;
        }
        input
    }
}

/// An input value that breaks a rule, with the JSON path of the field so clients can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidField {
    /// JSON path of the offending field, e.g. `lines[2].quantity`.
    pub field: String,
    /// What is wrong and what is accepted instead.
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidField {
    InvalidField { field: field.into(), message: message.into() }
}

fn check_text(field: &str, v: &Option<String>, max: usize) -> Result<(), InvalidField> {
    if let Some(s) = v {
        if s.trim().is_empty() {
            return Err(invalid(field, "must not be empty: leave the field out instead"));
        }
        if s.chars().count() > max {
            return Err(invalid(field, format!("is longer than {max} characters")));
        }
    }
    Ok(())
}

impl Recurrence {
    /// Checks the ISO 8601 period form the host understands.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let s = self.interval.as_bytes();
        let ok = s.len() >= 3
            && s.len() <= 6
            && s[0] == b'P'
            && s[1..s.len() - 1].iter().all(u8::is_ascii_digit)
            && s[1] != b'0'
            && matches!(s[s.len() - 1], b'D' | b'W' | b'M' | b'Y');
        if ok {
            Ok(())
        } else {
            Err(invalid(
                "recurrence.interval",
                format!("'{}' is not a period: use P<n>D, P<n>W, P<n>M or P<n>Y, e.g. P1M", self.interval),
            ))
        }
    }
}

impl OrderInput {
    /// Checks every rule serde cannot: positive quantities, non-negative prices, sizes, integer
    /// attributes, and that the subtotal fits in the integer type. Returns the subtotal.
    pub fn validate(&self) -> Result<Minor, InvalidField> {
        check_text("cost_center", &self.cost_center, MAX_CODE)?;
        check_text("department", &self.department, MAX_CODE)?;
        check_text("customer_id", &self.customer_id, MAX_CODE)?;
        check_text("vendor_id", &self.vendor_id, MAX_CODE)?;
        if self.lines.is_empty() {
            return Err(invalid("lines", "an order needs at least one line"));
        }
        if self.lines.len() > MAX_LINES {
            return Err(invalid("lines", format!("at most {MAX_LINES} lines per order")));
        }
        if let Some(r) = &self.recurrence {
            r.validate()?;
        }
        let attrs = serde_json::to_vec(&self.attributes).map(|v| v.len()).unwrap_or(usize::MAX);
        if attrs > MAX_ATTRIBUTES_BYTES {
            return Err(invalid("attributes", format!("at most {MAX_ATTRIBUTES_BYTES} bytes of attributes")));
        }
        check_json_depth("attributes", self.attributes.values())?;
        let mut subtotal: Minor = 0;
        for (i, line) in self.lines.iter().enumerate() {
            let at = |f: &str| format!("lines[{i}].{f}");
            if line.sku.trim().is_empty() || line.sku.chars().count() > MAX_CODE {
                return Err(invalid(at("sku"), format!("must be 1 to {MAX_CODE} characters")));
            }
            check_text(&at("description"), &line.description, MAX_TEXT)?;
            check_text(&at("tax_category"), &line.tax_category, MAX_CODE)?;
            check_text(&at("budget_category"), &line.budget_category, MAX_CODE)?;
            if line.quantity <= 0 || line.quantity > MAX_QUANTITY {
                return Err(invalid(
                    at("quantity"),
                    format!("must be between 1 and {MAX_QUANTITY}, got {}", line.quantity),
                ));
            }
            if line.unit_price_minor < 0 {
                return Err(invalid(
                    at("unit_price_minor"),
                    format!("must be zero or more, got {}: express discounts through a step", line.unit_price_minor),
                ));
            }
            if line.unit_price_minor > MAX_AMOUNT_MINOR {
                return Err(invalid(
                    at("unit_price_minor"),
                    format!("must be at most {MAX_AMOUNT_MINOR} minor units, got {}", line.unit_price_minor),
                ));
            }
            let total = line_total(line).ok_or_else(|| {
                invalid(
                    at("unit_price_minor"),
                    format!("quantity × price is more than the largest amount, {MAX_AMOUNT_MINOR} minor units"),
                )
            })?;
            subtotal = checked_sum([subtotal, total]).ok_or_else(|| {
                invalid(
                    "lines",
                    format!("the order total is more than the largest amount, {MAX_AMOUNT_MINOR} minor units"),
                )
            })?;
        }
        // Extensions see integers only: amounts are minor units, and Rhai has no floating point.
        if self.attributes.values().any(has_float) {
            return Err(invalid("attributes", "numbers must be integers: express amounts in minor units"));
        }
        Ok(subtotal)
    }
}

/// Whether a JSON value holds a non-integer number anywhere. Extensions see integers only:
/// amounts are minor units, and the Rhai runtime has no floating point.
pub fn has_float(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(has_float),
        serde_json::Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

/// Quantity × unit price, or `None` when it is beyond [`MAX_AMOUNT_MINOR`].
pub fn line_total(line: &Line) -> Option<Minor> {
    line.quantity.checked_mul(line.unit_price_minor).filter(|t| within_bounds(*t))
}

/// How deeply a JSON value nests: a scalar is 0, `[]` and `{}` are 1.
pub fn json_depth(v: &serde_json::Value) -> usize {
    // Iterative, so a hostile document cannot overflow the stack of the check itself.
    let mut deepest = 0;
    let mut todo = vec![(v, 0usize)];
    while let Some((v, depth)) = todo.pop() {
        match v {
            serde_json::Value::Array(a) => {
                deepest = deepest.max(depth + 1);
                todo.extend(a.iter().map(|x| (x, depth + 1)));
            }
            serde_json::Value::Object(o) => {
                deepest = deepest.max(depth + 1);
                todo.extend(o.values().map(|x| (x, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Refuses a free-form document (the values of an object named `field`) nested deeper than
/// [`MAX_JSON_DEPTH`], counting the object itself as one level.
pub fn check_json_depth<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a serde_json::Value>,
) -> Result<(), InvalidField> {
    let depth = 1 + values.into_iter().map(json_depth).max().unwrap_or(0);
    if depth > MAX_JSON_DEPTH {
        return Err(invalid(
            field,
            format!("nests {depth} levels deep, at most {MAX_JSON_DEPTH}: flatten the document"),
        ));
    }
    Ok(())
}

/// Subscription bookkeeping kept beside the status (R3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Whether it currently recurs.
    pub state: SubscriptionState,
    /// Set once the subscription passed every stage; reactivation then never asks again.
    pub approved_once: bool,
}

/// Who rejected an order and why (R2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    /// The approver's name, or `step:<name>` when a step rejected it.
    pub by: String,
    /// The reason given; never empty.
    pub reason: String,
    /// The stage that was rejected, if an approver did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// An order with everything the host derived for it. The state machine transforms this value;
/// the store keeps it; the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Identifier (UUID v7, so ids sort by creation time).
    pub id: String,
    /// The user who created it.
    pub requester: String,
    /// What the requester wrote.
    pub input: OrderInput,
    /// Lifecycle status.
    pub status: OrderStatus,
    /// Present when `input.recurrence` is.
    pub subscription: Option<Subscription>,
    /// Sum of the lines.
    pub subtotal_minor: Minor,
    /// Adjustments the steps added (tax, discounts).
    pub adjustments: Vec<PriceAdjustment>,
    /// Risk flags the steps raised; they travel with the order (R5).
    pub flags: Vec<RiskFlag>,
    /// The approval plan.
    pub plan: Plan,
    /// Why the order is on hold, when it is.
    pub hold_reason: Option<String>,
    /// Who rejected it and why, when rejected.
    pub rejection: Option<Rejection>,
    /// Created, in UTC.
    pub created_at: DateTime<Utc>,
    /// Last changed, in UTC.
    pub updated_at: DateTime<Utc>,
    /// Last submitted, in UTC.
    pub submitted_at: Option<DateTime<Utc>>,
    /// When it became approved, in UTC.
    pub approved_at: Option<DateTime<Utc>>,
    /// The ERP's reference once the order was exported there (released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    /// Increments on every change; guards against concurrent edits.
    pub version: u64,
}

impl Order {
    /// A new draft. The input must already be validated.
    pub fn new_draft(id: String, requester: String, input: OrderInput, subtotal: Minor, now: DateTime<Utc>) -> Order {
        let subscription =
            input.recurrence.as_ref().map(|_| Subscription { state: SubscriptionState::Active, approved_once: false });
        Order {
            id,
            requester,
            input,
            status: OrderStatus::Draft,
            subscription,
            subtotal_minor: subtotal,
            adjustments: Vec::new(),
            flags: Vec::new(),
            plan: Plan::default(),
            hold_reason: None,
            rejection: None,
            created_at: now,
            updated_at: now,
            submitted_at: None,
            approved_at: None,
            external_ref: None,
            version: 0,
        }
    }

    /// Tax the steps added. The engine holds an order whose adjustments would take any sum past
    /// [`MAX_AMOUNT_MINOR`], so this is exact for every order the host assessed; for a document
    /// stored before that bound existed it reads as the bound rather than a wrapped number.
    pub fn tax_minor(&self) -> Minor {
        checked_sum(self.adjustments.iter().filter(|a| a.kind == PriceKind::Tax).map(|a| a.amount_minor))
            .unwrap_or(MAX_AMOUNT_MINOR)
    }

    /// Subtotal plus every adjustment; bounded as [`Order::tax_minor`].
    pub fn total_minor(&self) -> Minor {
        checked_sum(std::iter::once(self.subtotal_minor).chain(self.adjustments.iter().map(|a| a.amount_minor)))
            .unwrap_or(MAX_AMOUNT_MINOR)
    }

    /// Whether this order recurs.
    pub fn is_subscription(&self) -> bool {
        self.subscription.is_some()
    }

    /// When the order reached its outcome: approval (kept once released), rejection or
    /// withdrawal. `None` while it is still undecided (draft, pending, on hold).
    pub fn decided_at(&self) -> Option<DateTime<Utc>> {
        match self.status {
            OrderStatus::Approved | OrderStatus::Released => self.approved_at,
            OrderStatus::Rejected | OrderStatus::Withdrawn => Some(self.updated_at),
            OrderStatus::Draft | OrderStatus::PendingApproval | OrderStatus::OnHold => None,
        }
    }

    /// Whole seconds from the last submission to the approval; `None` unless approved.
    pub fn approval_seconds(&self) -> Option<i64> {
        let approved = self.approved_at?;
        if !matches!(self.status, OrderStatus::Approved | OrderStatus::Released) {
            return None;
        }
        Some((approved - self.submitted_at?).num_seconds().max(0))
    }

    /// The step behind a rejection: the step that rejected the order itself, or the step that
    /// added the stage an approver rejected. `None` when not rejected.
    pub fn rejecting_rule(&self) -> Option<&str> {
        let rejection = self.rejection.as_ref().filter(|_| self.status == OrderStatus::Rejected)?;
        if let Some(step) = rejection.by.strip_prefix(STEP_ACTOR_PREFIX) {
            return Some(step);
        }
        let stage = rejection.stage.as_deref()?;
        self.plan.stages.iter().find(|s| s.key == stage).map(|s| s.source.as_str())
    }

    /// The earliest due time among the stages still waiting for a decision: an order whose
    /// time has passed is overdue. `None` unless pending.
    pub fn next_due_at(&self) -> Option<DateTime<Utc>> {
        if self.status != OrderStatus::PendingApproval {
            return None;
        }
        self.plan.stages.iter().filter(|s| s.state.is_decidable()).filter_map(|s| s.due_at).min()
    }
}

/// The smallest order id (a UUID v7 in text) created at `t` or later: ids compare as their
/// creation times, so a range of creation times is a range of ids.
pub fn id_floor(t: DateTime<Utc>) -> String {
    let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0).min((1 << 48) - 1);
    let hex = format!("{ms:012x}");
    format!("{}-{}-0000-0000-000000000000", &hex[..8], &hex[8..])
}

/// How a rejection by a step names its rejecter: `step:<name>`.
pub const STEP_ACTOR_PREFIX: &str = "step:";

#[cfg(test)]
mod tests;
