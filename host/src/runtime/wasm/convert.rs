//! Conversions between the host's domain shapes and the WIT types. The WIT types are the wire
//! format; everything the host trusts goes through the domain types and the engine's checks.

use super::bindings::types as wit;
use crate::domain::plan::Quorum;
use crate::domain::step::{
    ApproverSpec, OrderContext, PriceAdjustment, PriceKind, RiskFlag, Severity, StageRequest, StepOutput, StepVerdict,
};
use crate::engine::StepError;

/// The step's view of an order, in WIT form.
pub fn context(ctx: &OrderContext) -> wit::OrderContext {
    let o = &ctx.order;
    wit::OrderContext {
        order: wit::Order {
            id: o.id.clone(),
            requester: o.requester.clone(),
            cost_center: o.cost_center.clone(),
            department: o.department.clone(),
            customer_id: o.customer_id.clone(),
            vendor_id: o.vendor_id.clone(),
            currency: o.currency.clone(),
            lines: o
                .lines
                .iter()
                .map(|l| wit::Line {
                    sku: l.sku.clone(),
                    description: l.description.clone(),
                    quantity: l.quantity,
                    unit_price_minor: l.unit_price_minor,
                    line_total_minor: l.line_total_minor,
                    tax_category: l.tax_category.clone(),
                    budget_category: l.budget_category.clone(),
                })
                .collect(),
            recurrence: o.recurrence.clone(),
            attributes_json: serde_json::to_string(&o.attributes).unwrap_or_else(|_| "{}".into()),
        },
        subtotal_minor: ctx.subtotal_minor,
        requester: wit::RequesterProfile {
            name: ctx.requester.name.clone(),
            roles: ctx.requester.roles.clone(),
            spend_limit_minor: ctx.requester.spend_limit_minor,
            budget_minor: ctx.requester.budget_minor,
            budget_period: ctx.requester.budget_period.clone(),
            budget_used_minor: ctx.requester.budget_used_minor,
        },
        cost_center: ctx.cost_center.as_ref().map(|c| wit::CostCenterProfile {
            code: c.code.clone(),
            manager: c.manager.clone(),
            budget_minor: c.budget_minor,
            budget_used_minor: c.budget_used_minor,
        }),
        config_json: serde_json::to_string(&ctx.config).unwrap_or_else(|_| "{}".into()),
    }
}

fn bad(msg: String) -> StepError {
    StepError::BadOutput(msg)
}

fn approvers(a: wit::Approvers) -> Result<ApproverSpec, StepError> {
    Ok(match a {
        wit::Approvers::Role(r) => {
            ApproverSpec::Role(r.parse().map_err(|e: crate::domain::actor::BadRole| bad(e.to_string()))?)
        }
        wit::Approvers::Users(u) => ApproverSpec::Users(u),
        wit::Approvers::CostCenterManager(c) => ApproverSpec::CostCenterManager(c),
    })
}

/// A step's WIT output as the domain shape; the engine validates it further.
pub fn output(out: wit::StepOutput) -> Result<StepOutput, StepError> {
    use crate::engine::{MAX_ITEMS, MAX_STAGES};
    // Refuse oversized results at the boundary, before converting them.
    if out.stages.len() > MAX_STAGES || out.flags.len() > MAX_ITEMS || out.adjustments.len() > MAX_ITEMS {
        return Err(StepError::Oversized(format!(
            "{} stages, {} flags and {} adjustments; at most {MAX_STAGES} stages and {MAX_ITEMS} of the others per step",
            out.stages.len(),
            out.flags.len(),
            out.adjustments.len()
        )));
    }
    let mut stages = Vec::with_capacity(out.stages.len());
    for s in out.stages {
        let quorum = match s.quorum {
            wit::Quorum::Any => Quorum::Any,
            wit::Quorum::All => Quorum::All,
            wit::Quorum::AtLeast(n) if (1..=100).contains(&n) => Quorum::AtLeast(n),
            wit::Quorum::AtLeast(n) => {
                return Err(bad(format!("stage '{}': quorum {n} is not between 1 and 100", s.key)));
            }
        };
        stages.push(StageRequest {
            key: s.key,
            title: s.title,
            level: s.level,
            approvers: approvers(s.approvers)?,
            quorum,
            due_in_hours: s.due_in_hours,
            escalate_to: s.escalate_to.map(approvers).transpose()?,
            reason: s.reason,
        });
    }
    let flags = out
        .flags
        .into_iter()
        .map(|f| RiskFlag {
            code: f.code,
            severity: match f.severity {
                wit::Severity::Info => Severity::Info,
                wit::Severity::Warning => Severity::Warning,
                wit::Severity::High => Severity::High,
            },
            message: f.message,
            source: String::new(),
        })
        .collect();
    let adjustments = out
        .adjustments
        .into_iter()
        .map(|a| PriceAdjustment {
            kind: match a.kind {
                wit::PriceKind::Tax => PriceKind::Tax,
                wit::PriceKind::Discount => PriceKind::Discount,
                wit::PriceKind::Surcharge => PriceKind::Surcharge,
                wit::PriceKind::Shipping => PriceKind::Shipping,
            },
            code: a.code,
            amount_minor: a.amount_minor,
            description: a.description,
            source: String::new(),
        })
        .collect();
    let (verdict, reason) = match out.verdict {
        wit::Verdict::Proceed => (StepVerdict::Proceed, None),
        wit::Verdict::Reject(r) => (StepVerdict::Reject, Some(r)),
        wit::Verdict::Hold(r) => (StepVerdict::Hold, Some(r)),
    };
    Ok(StepOutput { stages, flags, adjustments, verdict, reason })
}

/// A notification in WIT form.
pub fn notification(n: &crate::domain::delivery::Notification) -> wit::Notification {
    let o = &n.order;
    wit::Notification {
        delivery_id: n.delivery_id.clone(),
        event: n.event.clone(),
        order: wit::OrderSummary {
            id: o.id.clone(),
            requester: o.requester.clone(),
            status: o.status.clone(),
            total_minor: o.total_minor,
            currency: o.currency.clone(),
            cost_center: o.cost_center.clone(),
            department: o.department.clone(),
        },
        recipients: n
            .recipients
            .iter()
            .map(|r| wit::Recipient { name: r.name.clone(), email: r.email.clone(), phone: r.phone.clone() })
            .collect(),
        stage: n.stage.clone(),
        reason: n.reason.clone(),
        data_json: n.data.to_string(),
    }
}

/// A customer profile and its unpaid invoices, from a connector.
pub fn customer(p: wit::CustomerProfile, invoices: Vec<wit::OpenInvoice>) -> crate::domain::step::Customer {
    crate::domain::step::Customer {
        id: p.id,
        name: p.name,
        email: p.email,
        phone: p.phone,
        credit_limit_minor: p.credit_limit_minor,
        currency: p.currency,
        account_manager: p.account_manager,
        open_invoices: invoices
            .into_iter()
            .map(|i| crate::domain::step::Invoice {
                id: i.id,
                amount_minor: i.amount_minor,
                currency: i.currency,
                due_date: i.due_date,
            })
            .collect(),
    }
}

/// A budget, from a connector.
pub fn budget(b: wit::Budget) -> crate::domain::step::ErpBudget {
    crate::domain::step::ErpBudget {
        key: b.key,
        period: b.period,
        limit_minor: b.limit_minor,
        used_minor: b.used_minor,
    }
}

/// A credit update in WIT form.
pub fn credit_update(u: &crate::domain::credit::CreditUpdate) -> wit::CreditUpdate {
    wit::CreditUpdate {
        customer_id: u.customer_id.clone(),
        order_id: u.order_id.clone(),
        amount_minor: u.amount_minor,
        currency: u.currency.clone(),
        idempotency_key: u.idempotency_key.clone(),
    }
}

/// A credit line, from a connector.
pub fn credit_line(l: wit::CreditLine) -> crate::domain::credit::CreditLine {
    crate::domain::credit::CreditLine {
        credit_limit_minor: l.credit_limit_minor,
        credit_used_minor: l.credit_used_minor,
        currency: l.currency,
    }
}
