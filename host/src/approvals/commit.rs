//! Writing a transition: the order, its audit entries, its outbox rows and its evaluation
//! record, inside the one store transaction of its change.

use super::ApprovalError;
use crate::domain::audit::timestamp;
use crate::domain::authorization::Authorization;
use crate::domain::delivery::OutboxEvent;
use crate::domain::machine::{self, Event, Outcome, Transition};
use crate::domain::money::Minor;
use crate::domain::order::Order;
use crate::domain::step::OrderContext;
use crate::engine::{self};
use crate::store::orders::{self};
use crate::store::{audit, authorizations, outbox};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

/// An evaluation ready to be committed with the transition it feeds.
pub(super) struct Evaluated {
    /// What the steps saw; none when the evaluation stopped before the context was built.
    pub(super) context: Option<OrderContext>,
    pub(super) runs: Vec<engine::StepRun>,
    pub(super) assessment: machine::Assessment,
}

impl Evaluated {
    /// An evaluation that stopped before the steps ran: the order goes on hold with the reason.
    pub(super) fn held(
        context: Option<OrderContext>,
        runs: Vec<engine::StepRun>,
        subtotal_minor: Minor,
        reason: String,
    ) -> Evaluated {
        Evaluated {
            context,
            runs,
            assessment: machine::Assessment {
                subtotal_minor,
                adjustments: Vec::new(),
                flags: Vec::new(),
                stages: Vec::new(),
                outcome: Outcome::Hold { reason },
            },
        }
    }
}

/// One extension of an evaluation as the audit trail records it: the exact code behind the
/// decision.
#[derive(Serialize)]
struct EvaluatedExtension<'a> {
    name: &'a str,
    kind: engine::StepKind,
    code_hash: Option<&'a str>,
    error: Option<&'a str>,
}

/// Writes a transition: the order, its audit entries, its outbox rows and (if any) the
/// evaluation record. Runs inside one store transaction.
pub(super) fn persist(
    conn: &Connection,
    tenant_id: &str,
    actor: &str,
    before: Option<&Order>,
    t: &Transition,
    at: DateTime<Utc>,
    evaluation: Option<&Evaluated>,
) -> Result<(), ApprovalError> {
    match before {
        Some(before) => {
            if !orders::update(conn, tenant_id, before, &t.order)? {
                return Err(ApprovalError::VersionConflict(
                    "the order was changed by someone else at the same time; reload it and retry".into(),
                ));
            }
        }
        None => orders::insert(conn, tenant_id, &t.order)?,
    }
    if let Some(e) = evaluation {
        let outcome = e.assessment.outcome.as_str();
        orders::record_evaluation(conn, tenant_id, &t.order.id, &timestamp(at), e.context.as_ref(), &e.runs, outcome)?;
        // The exact code behind the decision goes into the tamper-evident trail.
        let extensions: Vec<EvaluatedExtension<'_>> = e
            .runs
            .iter()
            .map(|r| EvaluatedExtension {
                name: &r.name,
                kind: r.kind,
                code_hash: Some(r.code_hash.as_str()).filter(|h| !h.is_empty()),
                error: r.error.as_deref(),
            })
            .collect();
        let data = serde_json::json!({"outcome": outcome, "extensions": extensions});
        audit::append(conn, tenant_id, at, actor, "order_evaluated", Some(&t.order.id), data)?;
    }
    let ts = timestamp(at);
    for event in &t.events {
        // The action is the entry's own column; the details are the rest of the event.
        let mut details = serde_json::to_value(event).unwrap_or_default();
        if let Some(o) = details.as_object_mut() {
            o.remove("action");
        }
        audit::append(conn, tenant_id, at, actor, event.action(), Some(&t.order.id), details)?;
        if OutboxEvent::is_announced(event) {
            outbox::enqueue(conn, tenant_id, &OutboxEvent::new(&t.order, actor, event.clone()), &ts)?;
        }
        if matches!(event, Event::OrderApproved { .. }) {
            issue_authorization(conn, tenant_id, actor, &t.order, at)?;
        }
    }
    Ok(())
}

/// R4: the approval of a customer order issues its authorization certificate, in the approval's
/// transaction, with the certificate's hash in the audit chain.
fn issue_authorization(
    conn: &Connection,
    tenant_id: &str,
    actor: &str,
    order: &Order,
    at: DateTime<Utc>,
) -> Result<(), ApprovalError> {
    if order.input.customer_id.is_none() {
        return Ok(());
    }
    let ctx = orders::latest_context(conn, tenant_id, &order.id)?;
    let name = ctx.as_ref().and_then(|c| c["customer"]["name"].as_str()).map(str::to_string);
    let Some(a) = Authorization::issue(uuid::Uuid::now_v7().to_string(), order, name, at) else { return Ok(()) };
    authorizations::insert(conn, tenant_id, &a)?;
    let data = serde_json::json!({"authorization": a.id, "customer_id": a.customer_id, "total_minor": a.total_minor, "sha256": a.sha256});
    audit::append(conn, tenant_id, at, actor, "authorization_issued", Some(&order.id), data)?;
    Ok(())
}
