//! Escalation of overdue stages (R6): a sweep finds every open stage whose due time has passed
//! (an index lookup, not a scan) and hands it to its escalation target through the state
//! machine, with an audit entry and a notification, like any other change. `serve` runs the
//! sweep on an interval, so no request stalls because an approver is away.

use crate::approvals::commit::persist;
use crate::approvals::{ApprovalError, Approvals};
use crate::domain::audit::timestamp;
use crate::domain::machine::{self, Command, ESCALATOR, TransitionError};
use crate::store::{directory, orders};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Orders escalated per sweep at most; the next sweep picks up the rest, oldest due first.
const SWEEP_LIMIT: usize = 500;

impl Approvals {
    /// Escalates every stage due at or before `now`, one change per order; returns how many
    /// orders changed. An order decided in the meantime is skipped: the state machine refuses
    /// escalating a stage that is no longer open.
    pub async fn escalate_overdue(&self, now: DateTime<Utc>) -> Result<usize, ApprovalError> {
        let due = self.store.read(move |c| orders::overdue(c, &timestamp(now), SWEEP_LIMIT)).await?;
        let mut escalated = 0;
        for (tenant_id, order_id) in due {
            let changed = self
                .store
                .write(move |c| -> Result<bool, ApprovalError> {
                    let Some(order) = orders::load(c, &tenant_id, &order_id)? else { return Ok(false) };
                    let policy = directory::tenant(c, &tenant_id)?.map(|t| t.policy).unwrap_or_default();
                    match machine::apply(&order, Command::Escalate { at: now }, &policy) {
                        Ok(t) => {
                            persist(c, &tenant_id, ESCALATOR, Some(&order), &t, now, None)?;
                            Ok(true)
                        }
                        Err(TransitionError::InvalidState(_)) => Ok(false),
                        Err(e) => Err(e.into()),
                    }
                })
                .await?;
            escalated += usize::from(changed);
        }
        Ok(escalated)
    }

    /// Sweeps for overdue stages every `every`, for as long as the server runs. A failed sweep
    /// is logged and retried at the next tick; it never stops the loop.
    pub async fn run_escalator(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.escalate_overdue(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(orders = n, "escalated overdue approval stages"),
                Err(e) => tracing::warn!(error = %e, "the escalation sweep failed; retrying at the next interval"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approvals::{ExtensionUpdate, NewUser};
    use crate::domain::fixtures::{input, line};
    use crate::domain::plan::StageState;
    use crate::runtime::Runtimes;
    use crate::store::{Store, StoreOptions};

    fn user(name: &str, role: &str) -> NewUser {
        NewUser::with_roles(name, vec![role.parse().expect("role")])
    }

    /// The shipped executive-threshold script with a 48-hour due time, on a real store: the
    /// sweep escalates nothing at 47 hours, the stage at 49, and nothing more after that.
    #[tokio::test]
    async fn the_sweep_escalates_a_stage_once_its_due_time_has_passed() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path().join("esc.db"), StoreOptions::default()).expect("store");
        let approvals = Approvals::new(store, Runtimes::new().expect("runtimes"));
        let (_, token) = approvals.create_tenant("acme").await.expect("tenant");
        let admin = approvals.authenticate(&token).await.expect("auth").expect("admin");
        let source = include_str!("../../../../scripts/executive-threshold.rhai");
        approvals.add_script(&admin, "executive-threshold", source).await.expect("script");
        let config = serde_json::json!({"threshold_minor": 1000, "due_in_hours": 48});
        let update = ExtensionUpdate {
            enabled: true,
            position: Some(1),
            config: Some(config),
            grants: None,
            compliance: None,
            upgrade: false,
        };
        approvals.update_extension(&admin, "executive-threshold", update).await.expect("enable");
        let (_, t) = approvals.create_user(&admin, user("alice", "requester")).await.expect("alice");
        let alice = approvals.authenticate(&t).await.expect("auth").expect("alice");
        let order = approvals.create_order(&alice, input(vec![line(1, 5000)])).await.expect("order");
        let submitted = approvals.submit(&alice, &order.id).await.expect("submit");
        let due = submitted.plan.stages[0].due_at.expect("a due time");
        let opened = submitted.submitted_at.expect("submitted");
        assert_eq!(due - opened, chrono::Duration::hours(48));

        assert_eq!(approvals.escalate_overdue(opened + chrono::Duration::hours(47)).await.expect("sweep"), 0);
        assert_eq!(approvals.escalate_overdue(opened + chrono::Duration::hours(49)).await.expect("sweep"), 1);
        assert_eq!(approvals.escalate_overdue(opened + chrono::Duration::hours(50)).await.expect("sweep"), 0);
        let order = approvals.order(&admin, &order.id).await.expect("order");
        assert_eq!(order.plan.stages[0].state, StageState::Escalated);
        // No escalate_to: the tenant's admins may now decide it.
        let decided =
            approvals.decide(&admin, &order.id, "executive".into(), crate::domain::plan::Verdict::Approve, None);
        assert_eq!(decided.await.expect("the admin decides").status, crate::domain::order::OrderStatus::Approved);
    }
}
