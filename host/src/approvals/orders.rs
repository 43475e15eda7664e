//! An order's life: create, read, submit and edit (evaluated outside the writer, committed if
//! the order did not move meanwhile), decide, withdraw, revoke, release, subscriptions, the
//! request view and the inbox.

use super::access::{acting_for, may_see, require_role, sees_all};
use super::commit::{Evaluated, persist};
use super::context::{ContextError, TenantDirectory, build_context};
use super::{ApprovalError, Approvals, invalid, not_found_order};
use crate::domain::actor::{Actor, Policy, roles};
use crate::domain::directory::Principal;
use crate::domain::machine::{self, Command, Event, Outcome, Transition, TransitionError};
use crate::domain::order::{Order, OrderInput, OrderPatch};
use crate::domain::plan::Verdict;
use crate::engine::{self};
use crate::store::StoreError;
use crate::store::directory;
use crate::store::orders::{self, OrderFilter};
use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;

/// Most candidate orders one inbox page reads per authority (the caller's own and each
/// delegator's): a page stays bounded however many pending orders the caller may not decide.
const SCAN_CAP: usize = 2_000;

impl Approvals {
    async fn check_cost_center(&self, tenant_id: &str, input: &OrderInput) -> Result<(), ApprovalError> {
        if let Some(code) = input.cost_center.clone() {
            let t = tenant_id.to_string();
            let c2 = code.clone();
            if self.store.read(move |c| directory::cost_center(c, &t, &c2)).await?.is_none() {
                return Err(invalid(
                    "cost_center",
                    format!("no cost center '{code}' in this tenant; ask an admin to create it"),
                ));
            }
        }
        Ok(())
    }

    /// Creates a draft order.
    pub async fn create_order(&self, p: &Principal, input: OrderInput) -> Result<Order, ApprovalError> {
        require_role(p, &[roles::REQUESTER, roles::ADMIN], "creating orders")?;
        let subtotal = input.validate()?;
        self.check_cost_center(&p.tenant.id, &input).await?;
        let now = Utc::now();
        let order = Order::new_draft(uuid::Uuid::now_v7().to_string(), p.user.name.clone(), input, subtotal, now);
        let t = Transition { order: order.clone(), events: vec![Event::OrderCreated { subtotal_minor: subtotal }] };
        let (tenant_id, actor) = (p.tenant.id.clone(), p.user.name.clone());
        self.store.write(move |c| persist(c, &tenant_id, &actor, None, &t, now, None)).await?;
        Ok(order)
    }

    pub(super) async fn load_visible(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        let (caller, id2) = (p.clone(), id.to_string());
        self.store
            .read(move |c| -> Result<Option<Order>, ApprovalError> {
                let Some(order) = orders::load(c, &caller.tenant.id, &id2)? else { return Ok(None) };
                let visible =
                    may_see(&caller, &order, &[]) || may_see(&caller, &order, &acting_for(c, &caller, Utc::now())?);
                Ok(visible.then_some(order))
            })
            .await?
            .ok_or_else(|| not_found_order(id))
    }

    /// One order, if the caller may see it (requester, approvers, admin, auditor).
    pub async fn order(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.load_visible(p, id).await
    }

    /// Runs the tenant's steps on an order (on a blocking thread).
    pub(super) async fn evaluate(&self, tenant_id: &str, order: &Order) -> Result<Evaluated, ApprovalError> {
        let (store, runtimes, tenant_id, order) =
            (self.store.clone(), self.runtimes.clone(), tenant_id.to_string(), order.clone());
        let counters = self.counters.clone();
        tokio::task::spawn_blocking(move || -> Result<Evaluated, ApprovalError> {
            let (t2, o2) = (tenant_id.clone(), order.clone());
            let mut ctx = match store.read_blocking(move |c| build_context(c, &t2, &o2, Utc::now())) {
                Ok(ctx) => ctx,
                Err(ContextError::Store(e)) => return Err(e.into()),
                Err(e @ ContextError::BudgetBeyondBounds(_)) => {
                    let reason = e.to_string();
                    tracing::warn!(tenant = %tenant_id, order = %order.id, %reason, "order put on hold");
                    return Ok(Evaluated::held(None, Vec::new(), order.subtotal_minor, reason));
                }
            };
            // Connector data first (customer, invoices, budgets); without it, fail closed.
            if let Err(reason) = runtimes.enrich(&store, &tenant_id, &mut ctx) {
                counters.step_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(tenant = %tenant_id, order = %order.id, %reason, "order put on hold");
                let run = engine::StepRun {
                    name: "connector".into(),
                    kind: engine::StepKind::Connector,
                    code_hash: String::new(),
                    config: serde_json::Value::Null,
                    output: None,
                    error: Some(reason.clone()),
                };
                let subtotal = ctx.subtotal_minor;
                return Ok(Evaluated::held(Some(ctx), vec![run], subtotal, reason));
            }
            let steps = runtimes.steps_for(&store, &tenant_id)?;
            let dir = TenantDirectory::new(&store, &tenant_id).knowing(&ctx);
            let eval = engine::evaluate(&ctx, &steps, &dir);
            counters.evaluations.fetch_add(1, Ordering::Relaxed);
            counters.step_failures.fetch_add(eval.failures as u64, Ordering::Relaxed);
            if let Outcome::Hold { reason } = &eval.assessment.outcome {
                tracing::warn!(tenant = %tenant_id, order = %order.id, %reason, "order put on hold");
            }
            Ok(Evaluated { context: Some(ctx), runs: eval.runs, assessment: eval.assessment })
        })
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(payload) => ApprovalError::Internal(crate::store::report_panic("an evaluation", payload.as_ref())),
            Err(_) => ApprovalError::Store(StoreError::Unavailable),
        })?
    }

    /// Commits a command computed from a previously read order, if it did not change meanwhile.
    pub(super) async fn commit(
        &self,
        p: &Principal,
        order: Order,
        make: impl FnOnce(&Order, &Policy) -> Result<Transition, TransitionError> + Send + 'static,
        evaluation: Option<Evaluated>,
        at: DateTime<Utc>,
    ) -> Result<Order, ApprovalError> {
        let (tenant_id, actor) = (p.tenant.id.clone(), p.user.name.clone());
        self.store
            .write(move |c| -> Result<Order, ApprovalError> {
                let current = orders::load(c, &tenant_id, &order.id)?.ok_or_else(|| not_found_order(&order.id))?;
                if current.version != order.version {
                    return Err(ApprovalError::VersionConflict(
                        "the order changed while it was being evaluated; reload it and retry".into(),
                    ));
                }
                let policy = directory::tenant(c, &tenant_id)?.map(|t| t.policy).unwrap_or_default();
                let t = make(&current, &policy)?;
                persist(c, &tenant_id, &actor, Some(&current), &t, at, evaluation.as_ref())?;
                Ok(t.order)
            })
            .await
    }

    /// Submits (or resubmits an on-hold) order: evaluates it and applies the result.
    pub async fn submit(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        let order = self.load_visible(p, id).await?;
        machine::check_submit(&order, &p.user.actor())?;
        let evaluated = self.evaluate(&p.tenant.id, &order).await?;
        let by = p.user.actor();
        let at = Utc::now();
        let assessment = evaluated.assessment.clone();
        self.commit(
            p,
            order,
            move |o, pol| machine::apply(o, Command::Submit { by, assessment, at }, pol),
            Some(evaluated),
            at,
        )
        .await
    }

    /// Edits an order; past draft it is re-evaluated and its decisions reset.
    pub async fn edit(&self, p: &Principal, id: &str, patch: OrderPatch) -> Result<Order, ApprovalError> {
        let order = self.load_visible(p, id).await?;
        machine::check_edit(&order, &p.user.actor())?;
        let input = patch.apply_to(order.input.clone());
        let subtotal = input.validate()?;
        self.check_cost_center(&p.tenant.id, &input).await?;
        let (evaluated, assessment) = if machine::edit_needs_assessment(&order) {
            let mut preview = order.clone();
            preview.input = input.clone();
            preview.subtotal_minor = subtotal;
            let e = self.evaluate(&p.tenant.id, &preview).await?;
            let a = e.assessment.clone();
            (Some(e), Some(a))
        } else {
            (None, None)
        };
        let by = p.user.actor();
        let at = Utc::now();
        self.commit(
            p,
            order,
            move |o, pol| machine::apply(o, Command::Edit { by, input, subtotal_minor: subtotal, assessment, at }, pol),
            evaluated,
            at,
        )
        .await
    }

    /// Approves or rejects a stage. A caller who is not an approver of the stage but holds a
    /// delegation from one decides in that person's name (`on_behalf_of`, R6); their own
    /// authority always comes first.
    pub async fn decide(
        &self,
        p: &Principal,
        id: &str,
        stage: String,
        verdict: Verdict,
        comment: Option<String>,
    ) -> Result<Order, ApprovalError> {
        let critical = p.critical;
        self.change(p, id, move |order, policy, by, acting_for, at| {
            // Judged on the order and policy of this change, inside it: an edit racing the
            // approval cannot slip a larger total past the check.
            if verdict == Verdict::Approve
                && !critical
                && let Some(what) = super::access::critical_approval(policy, order)
            {
                return Err(ApprovalError::StepUpRequired(what));
            }
            let on_behalf_of = order
                .plan
                .stage(&stage)
                .filter(|s| !s.admits(&by))
                .and_then(|s| acting_for.iter().find(|d| s.admits(d)))
                .cloned();
            Ok(Command::Decide { by, on_behalf_of, stage, verdict, comment, via: None, at })
        })
        .await
    }

    /// [`Approvals::change`] for commands that need only the caller and the time.
    async fn simple(
        &self,
        p: &Principal,
        id: &str,
        make: impl FnOnce(Actor, DateTime<Utc>) -> Command + Send + 'static,
    ) -> Result<Order, ApprovalError> {
        self.change(p, id, move |_, _, by, _, at| Ok(make(by, at))).await
    }

    /// Applies one command to an order in a single writer change: load, check the caller may see
    /// it (another tenant's or an unrelated order is a 404), apply, persist. Reading and deciding
    /// in one change is what makes concurrent decisions resolve to exactly one winner. `make`
    /// gets the order, the caller and whose authority the caller holds under delegations.
    pub(super) async fn change(
        &self,
        p: &Principal,
        id: &str,
        make: impl FnOnce(&Order, &Policy, Actor, &[Actor], DateTime<Utc>) -> Result<Command, ApprovalError>
        + Send
        + 'static,
    ) -> Result<Order, ApprovalError> {
        let by = p.user.actor();
        let at = Utc::now();
        let caller = p.clone();
        let id = id.to_string();
        self.store
            .write(move |c| -> Result<Order, ApprovalError> {
                let tenant_id = &caller.tenant.id;
                let acting_for = acting_for(c, &caller, at)?;
                let order = orders::load(c, tenant_id, &id)?
                    .filter(|o| may_see(&caller, o, &acting_for))
                    .ok_or_else(|| not_found_order(&id))?;
                let policy = directory::tenant(c, tenant_id)?.map(|t| t.policy).unwrap_or_default();
                let command = make(&order, &policy, by, &acting_for, at)?;
                let t = machine::apply(&order, command, &policy)?;
                persist(c, tenant_id, &caller.user.name, Some(&order), &t, at, None)?;
                Ok(t.order)
            })
            .await
    }

    /// The requester withdraws the order.
    pub async fn withdraw(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.simple(p, id, |by, at| Command::Withdraw { by, at }).await
    }

    /// An admin revokes an approval (R8); the order goes back to pending.
    pub async fn revoke(&self, p: &Principal, id: &str, reason: String) -> Result<Order, ApprovalError> {
        if p.user.roles.iter().any(|r| r.as_str() == crate::domain::actor::roles::ADMIN) {
            super::access::require_step_up(p, "revoking an approval")?;
        }
        self.simple(p, id, move |by, at| Command::Revoke { by, reason, at }).await
    }

    /// Admin or finance releases an approved order.
    pub async fn release(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.simple(p, id, |by, at| Command::Release { by, at }).await
    }

    /// Pauses a subscription.
    pub async fn deactivate(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.simple(p, id, |by, at| Command::Deactivate { by, at }).await
    }

    /// Resumes a subscription, without new approval (R3).
    pub async fn reactivate(&self, p: &Principal, id: &str) -> Result<Order, ApprovalError> {
        self.simple(p, id, |by, at| Command::Reactivate { by, at }).await
    }

    /// The request view (R10). Users without an overseeing role see only their own orders.
    pub async fn list(
        &self,
        p: &Principal,
        mut filter: OrderFilter,
    ) -> Result<(Vec<Order>, Option<String>), ApprovalError> {
        if !sees_all(p) {
            match &filter.requester {
                Some(r) if *r != p.user.name => return Ok((Vec::new(), None)),
                _ => filter.requester = Some(p.user.name.clone()),
            }
        }
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| orders::list(c, &tenant_id, &filter)).await?)
    }

    /// How many orders of the request view match, up to `at_most`; the same visibility as
    /// [`Approvals::list`].
    pub async fn count(&self, p: &Principal, mut filter: OrderFilter, at_most: u64) -> Result<u64, ApprovalError> {
        if !sees_all(p) {
            match &filter.requester {
                Some(r) if *r != p.user.name => return Ok(0),
                _ => filter.requester = Some(p.user.name.clone()),
            }
        }
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| orders::count(c, &tenant_id, &filter, at_most)).await?)
    }

    /// Orders with a stage the caller may decide now — in their own right or under a delegation
    /// in force (R6); never the caller's own (R2, R7). Oldest first, `limit` per page after the
    /// order id `cursor`; the second value is the cursor of the next page.
    pub async fn inbox(
        &self,
        p: &Principal,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<Order>, Option<String>), ApprovalError> {
        let caller = p.clone();
        let policy = p.tenant.policy.clone();
        self.store
            .read(move |c| -> Result<(Vec<Order>, Option<String>), ApprovalError> {
                let me = caller.user.actor();
                let mut authorities = vec![me.clone()];
                authorities.extend(acting_for(c, &caller, Utc::now())?);
                // Each authority's first `limit + 1` decidable orders after the cursor; the
                // first `limit + 1` of their union are then the page and whether more follow. A
                // request reads at most SCAN_CAP candidates per authority: where that stops the
                // scan, the page ends there and its cursor resumes from it.
                let mut found: std::collections::BTreeMap<String, Order> = Default::default();
                let mut boundary: Option<String> = None;
                for who in &authorities {
                    let roles: Vec<String> = who.roles.iter().map(|r| r.to_string()).collect();
                    let (mut after, mut kept, mut scanned) = (cursor.clone(), 0, 0);
                    'scan: loop {
                        let batch = orders::open_for(c, &caller.tenant.id, &who.name, &roles, after.as_deref(), 200)?;
                        let full = batch.len() == 200;
                        for o in batch {
                            after = Some(o.id.clone());
                            scanned += 1;
                            if !machine::decidable_on_behalf(&o, &me, who, &policy).is_empty() {
                                found.entry(o.id.clone()).or_insert(o);
                                kept += 1;
                                if kept > limit {
                                    break 'scan;
                                }
                            }
                        }
                        if !full {
                            break;
                        }
                        if scanned >= SCAN_CAP {
                            boundary = match (boundary, after) {
                                (Some(b), Some(a)) => Some(b.min(a)),
                                (b, a) => b.or(a),
                            };
                            break;
                        }
                    }
                }
                let mut page: Vec<Order> = found
                    .into_values()
                    .filter(|o| boundary.as_ref().is_none_or(|b| o.id <= *b))
                    .take(limit + 1)
                    .collect();
                let next = if page.len() > limit {
                    page.truncate(limit);
                    page.last().map(|o| o.id.clone())
                } else {
                    boundary
                };
                Ok((page, next))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{input, line};
    use crate::domain::plan::{Approvers, Decision, Quorum, Stage, StageState, Verdict};
    use crate::runtime::Runtimes;
    use crate::store::{Store, StoreOptions};

    /// A pending order with one open stage for role approver, which `decided` already approved
    /// (quorum 2, so it stays open for others).
    fn pending(id: String, decided: Option<&str>) -> Order {
        let mut o = Order::new_draft(id, "alice".into(), input(vec![line(1, 100)]), 100, Utc::now());
        o.status = crate::domain::order::OrderStatus::PendingApproval;
        o.plan.stages = vec![Stage {
            key: "review".into(),
            title: "review".into(),
            level: 1,
            approvers: Approvers::Role { role: "approver".parse().expect("role") },
            quorum: Quorum::AtLeast(2),
            due_in_hours: None,
            escalate_to: None,
            due_at: None,
            reason: "r".into(),
            source: "test".into(),
            state: StageState::Open,
            decisions: decided
                .map(|by| Decision {
                    by: by.into(),
                    decision: Verdict::Approve,
                    comment: None,
                    at: Utc::now(),
                    on_behalf_of: None,
                    via: None,
                })
                .into_iter()
                .collect(),
            opened_in: None,
        }];
        o
    }

    #[tokio::test]
    async fn an_inbox_page_reads_a_bounded_number_of_candidates_and_resumes_after_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path().join("inbox.db"), StoreOptions::default()).expect("store");
        let approvals = Approvals::new(store.clone(), Runtimes::new().expect("runtimes"));
        let (tenant, token) = approvals.create_tenant("acme").await.expect("tenant");
        let admin = approvals.authenticate(&token).await.expect("auth").expect("admin");
        let user =
            |name: &str, role: &str| crate::approvals::NewUser::with_roles(name, vec![role.parse().expect("role")]);
        approvals.create_user(&admin, user("alice", "requester")).await.expect("alice");
        let (_, t) = approvals.create_user(&admin, user("carol", "approver")).await.expect("carol");
        let carol = approvals.authenticate(&t).await.expect("auth").expect("carol");
        // More candidates than one page reads that carol decided already, then one she has not.
        let decided = SCAN_CAP + 150;
        let tenant_id = tenant.id.clone();
        store
            .write(move |c| -> Result<(), StoreError> {
                for i in 0..=decided {
                    let who = (i < decided).then_some("carol");
                    orders::insert(c, &tenant_id, &pending(format!("o{i:06}"), who))?;
                }
                Ok(())
            })
            .await
            .expect("orders");
        let (page, next) = approvals.inbox(&carol, 50, None).await.expect("first page");
        assert!(page.is_empty());
        let next = next.expect("the page ends where the scan stopped, with a cursor");
        assert!(next.as_str() >= format!("o{:06}", SCAN_CAP - 1).as_str(), "{next}");
        let (page, next) = approvals.inbox(&carol, 50, Some(next)).await.expect("second page");
        assert_eq!(page.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [format!("o{decided:06}")]);
        assert_eq!(next, None);
    }
}
