//! The data shapes every extension sees and returns: the order context going in, the step
//! output coming back. Rhai scripts, WASM components and native plugins all use these shapes
//! (documented field by field in `plugin-api/README.md`); the WIT contract mirrors them.

use super::actor::Role;
use super::contact::{check_email, check_phone};
use super::money::{MAX_AMOUNT_MINOR, Minor};
use super::order::{Line, OrderInput, line_total};

pub use super::adjustment::{PriceAdjustment, PriceKind};
pub use super::flag::{RiskFlag, Severity};
use serde::{Deserialize, Serialize};

/// One line as a step sees it: the requester's line plus its computed total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextLine {
    /// Article number.
    pub sku: String,
    /// Free text.
    pub description: Option<String>,
    /// Units, positive.
    pub quantity: i64,
    /// Price of one unit, minor units.
    pub unit_price_minor: Minor,
    /// quantity × unit price.
    pub line_total_minor: Minor,
    /// Tax category.
    pub tax_category: Option<String>,
    /// Budget category.
    pub budget_category: Option<String>,
}

impl From<&Line> for ContextLine {
    fn from(l: &Line) -> Self {
        ContextLine {
            sku: l.sku.clone(),
            description: l.description.clone(),
            quantity: l.quantity,
            unit_price_minor: l.unit_price_minor,
            line_total_minor: line_total(l).unwrap_or(super::money::MAX_AMOUNT_MINOR),
            tax_category: l.tax_category.clone(),
            budget_category: l.budget_category.clone(),
        }
    }
}

/// The order as a step sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextOrder {
    /// Order id.
    pub id: String,
    /// Requester's user name.
    pub requester: String,
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
    /// Lines with totals.
    pub lines: Vec<ContextLine>,
    /// Recurrence period (`P1M`), for subscriptions.
    pub recurrence: Option<String>,
    /// Free attributes.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl ContextOrder {
    /// Builds the step's view of an order.
    pub fn new(id: &str, requester: &str, input: &OrderInput) -> ContextOrder {
        ContextOrder {
            id: id.to_string(),
            requester: requester.to_string(),
            cost_center: input.cost_center.clone(),
            department: input.department.clone(),
            customer_id: input.customer_id.clone(),
            vendor_id: input.vendor_id.clone(),
            currency: input.currency.to_string(),
            lines: input.lines.iter().map(ContextLine::from).collect(),
            recurrence: input.recurrence.as_ref().map(|r| r.interval.clone()),
            attributes: input.attributes.clone(),
        }
    }
}

/// The requester as a step sees them (R1: spend limit and budget drive user-specific approval).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequesterProfile {
    /// User name.
    pub name: String,
    /// Roles held.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Largest order allowed without approval, if the user has one.
    #[serde(default)]
    pub spend_limit_minor: Option<Minor>,
    /// Budget per period, if the user has one.
    #[serde(default)]
    pub budget_minor: Option<Minor>,
    /// `month`, `quarter` or `year`.
    #[serde(default)]
    pub budget_period: Option<String>,
    /// Total of the user's approved and released orders in the current period, this one excluded.
    #[serde(default)]
    pub budget_used_minor: Minor,
}

/// The order's cost center as a step sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostCenterProfile {
    /// Code.
    pub code: String,
    /// Manager's user name.
    pub manager: String,
    /// Budget, if set (per year).
    #[serde(default)]
    pub budget_minor: Option<Minor>,
    /// Total of approved and released orders on this cost center this year, this one excluded.
    #[serde(default)]
    pub budget_used_minor: Minor,
}

/// An unpaid invoice of a customer, from the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Invoice id.
    pub id: String,
    /// Amount still open.
    pub amount_minor: Minor,
    /// ISO 4217 code.
    #[serde(default)]
    pub currency: String,
    /// Due date, `YYYY-MM-DD`.
    #[serde(default)]
    pub due_date: String,
}

/// The customer an order is placed for, as the tenant's ERP connector reported it before the
/// steps ran (R4): its profile and its unpaid invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Customer id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// E-mail, for the customer's notifications.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone (E.164).
    #[serde(default)]
    pub phone: Option<String>,
    /// Credit limit.
    #[serde(default)]
    pub credit_limit_minor: Option<Minor>,
    /// Currency of the credit limit.
    #[serde(default)]
    pub currency: Option<String>,
    /// User name of the account manager.
    #[serde(default)]
    pub account_manager: Option<String>,
    /// Unpaid invoices.
    #[serde(default)]
    pub open_invoices: Vec<Invoice>,
}

/// Most unpaid invoices of one customer the host takes from a connector; their sum then stays
/// far inside `i64` for steps that add them up.
pub const MAX_INVOICES: usize = 1_000;

/// Most budgets a connector may report for one order.
pub const MAX_BUDGETS: usize = 100;

fn amount_in_range(what: &str, amount: Minor) -> Result<(), String> {
    if (0..=MAX_AMOUNT_MINOR).contains(&amount) {
        Ok(())
    } else {
        Err(format!("{what} is {amount}, outside 0 to {MAX_AMOUNT_MINOR} minor units"))
    }
}

impl Customer {
    /// Checks what a connector reported before steps read it or notifiers write to it: valid
    /// contact addresses, amounts within bounds, a bounded number of invoices.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(e) = &self.email {
            check_email(e).map_err(|e| format!("customer {}: {e}", self.id))?;
        }
        if let Some(p) = &self.phone {
            check_phone(p).map_err(|e| format!("customer {}: {e}", self.id))?;
        }
        if let Some(limit) = self.credit_limit_minor {
            amount_in_range(&format!("the credit limit of customer {}", self.id), limit)?;
        }
        if self.open_invoices.len() > MAX_INVOICES {
            return Err(format!(
                "customer {} has {} unpaid invoices, more than the {MAX_INVOICES} the host takes",
                self.id,
                self.open_invoices.len()
            ));
        }
        for i in &self.open_invoices {
            amount_in_range(&format!("invoice {} of customer {}", i.id, self.id), i.amount_minor)?;
        }
        Ok(())
    }
}

impl ErpBudget {
    /// Checks a budget a connector reported: its amounts within bounds.
    pub fn validate(&self) -> Result<(), String> {
        amount_in_range(&format!("the limit of budget {}", self.key), self.limit_minor)?;
        amount_in_range(&format!("the used amount of budget {}", self.key), self.used_minor)
    }
}

/// A budget the ERP tracks (a cost center's, a budget category's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErpBudget {
    /// What it is for: a cost center code or a budget category.
    pub key: String,
    /// `month`, `quarter` or `year`.
    pub period: String,
    /// The limit.
    pub limit_minor: Minor,
    /// Spent so far in the period.
    pub used_minor: Minor,
}

/// Everything a step may read. Built by the host; steps get nothing else (no clock, no
/// network), so an evaluation can be replayed exactly from its stored context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderContext {
    /// The order.
    pub order: ContextOrder,
    /// Sum of line totals.
    pub subtotal_minor: Minor,
    /// The requester.
    pub requester: RequesterProfile,
    /// The cost center, when the order names a known one.
    pub cost_center: Option<CostCenterProfile>,
    /// The customer, from the tenant's ERP connector: scripts read `ctx.customer`, WASM steps the
    /// plugin API 1.1 `records` interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    /// Budgets from the tenant's ERP connector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<ErpBudget>,
    /// This step's configuration for this tenant (filled per step).
    pub config: serde_json::Value,
}

/// Who a step wants to decide a stage, before the host resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ApproverSpec {
    /// Anyone holding this role.
    Role(Role),
    /// These users.
    Users(Vec<String>),
    /// The manager of this cost center code.
    CostCenterManager(String),
}

fn default_level() -> u32 {
    1
}

/// A stage a step asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    /// Unique key within the order, e.g. `executive`.
    pub key: String,
    /// Shown to approvers; defaults to the key.
    #[serde(default)]
    pub title: Option<String>,
    /// Level, 1 to 100; default 1.
    #[serde(default = "default_level")]
    pub level: u32,
    /// Who decides.
    pub approvers: ApproverSpec,
    /// `"any"` (default), `"all"` or a number.
    #[serde(default = "default_quorum")]
    pub quorum: super::plan::Quorum,
    /// Hours until overdue.
    #[serde(default)]
    pub due_in_hours: Option<u32>,
    /// Who takes over when overdue.
    #[serde(default)]
    pub escalate_to: Option<ApproverSpec>,
    /// Why the stage exists; required.
    pub reason: String,
}

fn default_quorum() -> super::plan::Quorum {
    super::plan::Quorum::Any
}

/// A step's overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepVerdict {
    /// Carry on with the stages returned (default).
    #[default]
    Proceed,
    /// Reject the order; `reason` is required.
    Reject,
    /// Put the order on hold; `reason` is required.
    Hold,
}

/// What a step returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepOutput {
    /// Stages to add.
    #[serde(default)]
    pub stages: Vec<StageRequest>,
    /// Risk flags to raise.
    #[serde(default)]
    pub flags: Vec<RiskFlag>,
    /// Price adjustments.
    #[serde(default)]
    pub adjustments: Vec<PriceAdjustment>,
    /// Proceed, reject or hold.
    #[serde(default)]
    pub verdict: StepVerdict,
    /// Required with reject and hold.
    #[serde(default)]
    pub reason: Option<String>,
}
