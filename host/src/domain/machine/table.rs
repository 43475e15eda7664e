//! The transition table: which command applies to an order in which status, and which statuses
//! it may leave the order in. [`apply`](super::apply) consults it before anything else about the
//! order's state, so the table is the rule; the table in the module documentation is rendered
//! from it ([`render`]) and a test keeps the two equal.

use super::CommandKind;
use crate::domain::order::{Order, OrderStatus};

use OrderStatus::{Approved, Draft, OnHold, PendingApproval, Rejected, Released, Withdrawn};

/// Which orders a rule applies to, besides their status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every order.
    Any,
    /// Only subscriptions (orders with a recurrence).
    Subscriptions,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The command.
    pub command: CommandKind,
    /// The statuses it applies in.
    pub from: &'static [OrderStatus],
    /// Which orders.
    pub scope: Scope,
    /// The statuses the order may have afterwards.
    pub to: &'static [OrderStatus],
    /// What decides among `to`, and the events written, for people reading the table.
    pub effect: &'static str,
}

/// Every status an evaluation can settle an order in: proceed with stages, proceed without,
/// a step rejected, a step failed or asked for a hold.
const SETTLED: &[OrderStatus] = &[PendingApproval, Approved, Rejected, OnHold];

/// The transition table. A command in a status no row lists is refused (409 `invalid_state`).
pub const TABLE: &[Rule] = &[
    Rule {
        command: CommandKind::Submit,
        from: &[Draft, OnHold],
        scope: Scope::Any,
        to: SETTLED,
        effect: "evaluated: order_submitted, then stage_opened* | order_approved | order_rejected | order_held",
    },
    Rule { command: CommandKind::Edit, from: &[Draft], scope: Scope::Any, to: &[Draft], effect: "order_edited" },
    Rule {
        command: CommandKind::Edit,
        from: &[PendingApproval, OnHold],
        scope: Scope::Any,
        to: SETTLED,
        effect: "re-evaluated: order_edited, approval_reset, then as Submit",
    },
    Rule {
        command: CommandKind::Edit,
        from: &[Approved],
        scope: Scope::Subscriptions,
        to: SETTLED,
        effect: "a new commitment, re-evaluated: order_edited, approval_reset, then as Submit",
    },
    Rule {
        command: CommandKind::Decide,
        from: &[PendingApproval],
        scope: Scope::Any,
        to: &[PendingApproval, Approved, Rejected],
        effect: "decision_recorded, then stage_approved (stage_opened* | order_approved) | stage_rejected, order_rejected",
    },
    Rule {
        command: CommandKind::Withdraw,
        from: &[Draft, PendingApproval, OnHold],
        scope: Scope::Any,
        to: &[Withdrawn],
        effect: "order_withdrawn",
    },
    Rule {
        command: CommandKind::Revoke,
        from: &[Approved],
        scope: Scope::Any,
        to: &[PendingApproval, OnHold],
        effect: "approval_revoked, then stage_opened* | order_held (no stage to reopen)",
    },
    Rule {
        command: CommandKind::Release,
        from: &[Approved],
        scope: Scope::Any,
        to: &[Released],
        effect: "order_released",
    },
    Rule {
        command: CommandKind::Exported,
        from: &[Approved],
        scope: Scope::Any,
        to: &[Released],
        effect: "order_released with the ERP's reference",
    },
    Rule {
        command: CommandKind::Deactivate,
        from: &[Approved, Released],
        scope: Scope::Subscriptions,
        to: &[Approved, Released],
        effect: "status unchanged, inactive: subscription_deactivated",
    },
    Rule {
        command: CommandKind::Reactivate,
        from: &[Approved, Released],
        scope: Scope::Subscriptions,
        to: &[Approved, Released],
        effect: "status unchanged, active, never re-approved (R3): subscription_reactivated",
    },
    Rule {
        command: CommandKind::Escalate,
        from: &[PendingApproval],
        scope: Scope::Any,
        to: &[PendingApproval],
        effect: "each overdue open stage: stage_escalated (R6)",
    },
    Rule {
        command: CommandKind::MarkDrift,
        from: &[PendingApproval],
        scope: Scope::Any,
        to: &[PendingApproval],
        effect: "status unchanged, the policy_drift flag set: policy_drift | cleared: policy_drift_cleared (R8)",
    },
];

/// The rule that lets `command` apply to this order, if any.
pub fn rule_for(order: &Order, command: CommandKind) -> Option<&'static Rule> {
    TABLE.iter().find(|r| {
        r.command == command && r.from.contains(&order.status) && (r.scope == Scope::Any || order.is_subscription())
    })
}

/// Why `command` does not apply to this order, naming where it would.
pub fn refusal(order: &Order, command: CommandKind) -> String {
    let places: Vec<String> = TABLE
        .iter()
        .filter(|r| r.command == command)
        .map(|r| {
            let statuses: Vec<&str> = r.from.iter().map(|s| s.as_str()).collect();
            match r.scope {
                Scope::Any => format!("{} orders", statuses.join(" or ")),
                Scope::Subscriptions => format!("{} subscriptions", statuses.join(" or ")),
            }
        })
        .collect();
    let what = if order.is_subscription() { "subscription" } else { "order (not a subscription)" };
    format!(
        "cannot {} this {what}: it is {}, and {} applies only to {}; reload it to see what it allows now",
        command.verb(),
        order.status.as_str(),
        command.as_str(),
        places.join(", ")
    )
}

/// The table as the text the module documentation shows.
pub fn render() -> String {
    let mut out = String::from("from                              command     scope          to\n");
    for r in TABLE {
        let from: Vec<&str> = r.from.iter().map(|s| s.as_str()).collect();
        let to: Vec<&str> = r.to.iter().map(|s| s.as_str()).collect();
        let scope = match r.scope {
            Scope::Any => "any",
            Scope::Subscriptions => "subscriptions",
        };
        out.push_str(&format!("{:<33} {:<11} {:<14} {}\n", from.join(", "), r.command.as_str(), scope, to.join(", ")));
        out.push_str(&format!("{:<33} {}\n", "", r.effect));
    }
    out
}
