//! Who may see and do what: roles that oversee every order, the people a plan names, and
//! the authority a delegation in force lends.

use super::ApprovalError;
use crate::domain::actor::{Actor, roles};
use crate::domain::directory::Principal;
use crate::domain::order::Order;
use crate::store::delegations;
use crate::store::directory;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

pub(super) fn require_role(p: &Principal, allowed: &[&str], what: &str) -> Result<(), ApprovalError> {
    if allowed.iter().any(|r| p.user.roles.iter().any(|h| h.as_str() == *r)) {
        Ok(())
    } else {
        Err(ApprovalError::Forbidden(format!("{what} needs one of the roles: {}", allowed.join(", "))))
    }
}

/// Critical actions need a credential marked for them: a dashboard session that passed the
/// second factor in the last few minutes, or a token an admin marked (or the operator's).
pub(super) fn require_step_up(p: &Principal, what: &str) -> Result<(), ApprovalError> {
    if p.critical { Ok(()) } else { Err(ApprovalError::StepUpRequired(what.to_string())) }
}

/// Whether approving this order is a critical action under the tenant's policy (its total is
/// above the step-up amount), and if so, how to name it.
pub(super) fn critical_approval(
    policy: &crate::domain::actor::Policy,
    order: &crate::domain::order::Order,
) -> Option<String> {
    let limit = policy.step_up_above_minor?;
    (order.total_minor() > limit).then(|| format!("approving an order above {limit} minor units"))
}

/// Roles that may see every order of the tenant (the request view, R10).
pub(super) const OVERSEERS: [&str; 7] = [
    roles::ADMIN,
    roles::AUDITOR,
    roles::APPROVER,
    roles::COST_CENTER_MANAGER,
    roles::COMPLIANCE,
    roles::FINANCE,
    roles::EXECUTIVE,
];

pub(super) fn sees_all(p: &Principal) -> bool {
    p.user.roles.iter().any(|r| OVERSEERS.contains(&r.as_str()))
}

/// Whether the caller may see this order: its requester, an overseeing role, or anyone the plan
/// names as an approver of one of its stages (a tenant role such as `it-security`, a listed user,
/// a cost center's manager, an escalation target) or who decided one — in their own right or
/// for someone whose authority they hold under a delegation in force (`acting_for`).
pub(super) fn may_see(p: &Principal, order: &Order, acting_for: &[Actor]) -> bool {
    if order.requester == p.user.name || sees_all(p) {
        return true;
    }
    let named =
        |actor: &Actor| {
            actor.roles.iter().any(|r| OVERSEERS.contains(&r.as_str()))
                || order.plan.stages.iter().any(|s| {
                    s.approvers.admits(actor) || s.escalation_target().admits(actor) || s.decided_by(&actor.name)
                })
        };
    named(&p.user.actor()) || acting_for.iter().any(named)
}

/// The people whose authority the caller holds now, under delegations in force (R6).
pub(super) fn acting_for(conn: &Connection, p: &Principal, at: DateTime<Utc>) -> Result<Vec<Actor>, ApprovalError> {
    let mut actors = Vec::new();
    for d in delegations::active_for(conn, &p.tenant.id, &p.user.name, at)? {
        if let Some(u) = directory::user(conn, &p.tenant.id, &d.delegator)? {
            actors.push(u.actor());
        }
    }
    Ok(actors)
}
