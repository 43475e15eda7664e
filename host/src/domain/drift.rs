//! Policy drift (R8): a pending order was planned under rules that have changed since. The drift
//! check re-evaluates it under the current rules and compares the *shape* of the two plans —
//! the verdict, each stage's key, approvers, quorum and level, and the risk flags — not the
//! decisions already made. The same comparison tells a what-if simulation what a candidate
//! would change.

use crate::domain::flag::{RiskFlag, Severity};
use crate::domain::machine::{Assessment, Outcome};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::plan::{Approvers, Quorum};
use serde::{Deserialize, Serialize};

/// The code of the flag a drifted order carries.
pub const DRIFT_FLAG: &str = "policy_drift";

/// Who the audit trail names for the drift check, and the flag's source: not a valid user name,
/// and not a step's name, so neither a person nor a step can raise or clear the flag.
pub const DRIFT_CHECKER: &str = "greenlight:drift-check";

/// What of a plan decides who must approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanShape {
    verdict: OrderStatus,
    stages: Vec<(String, Approvers, Quorum, u32)>,
    flags: Vec<String>,
}

impl PlanShape {
    /// What an evaluation would make of an order: `approved` when nothing needs approval.
    pub fn of_assessment(a: &Assessment) -> PlanShape {
        let verdict = match &a.outcome {
            Outcome::Reject { .. } => OrderStatus::Rejected,
            Outcome::Hold { .. } => OrderStatus::OnHold,
            Outcome::Proceed if a.stages.is_empty() => OrderStatus::Approved,
            Outcome::Proceed => OrderStatus::PendingApproval,
        };
        PlanShape {
            verdict,
            stages: a.stages.iter().map(|s| (s.key.clone(), s.approvers.clone(), s.quorum, s.level)).collect(),
            flags: a.flags.iter().map(|f| f.code.clone()).collect(),
        }
    }

    /// The plan an order has, its own drift flag left out.
    pub fn of_order(o: &Order) -> PlanShape {
        PlanShape {
            verdict: o.status,
            stages: o.plan.stages.iter().map(|s| (s.key.clone(), s.approvers.clone(), s.quorum, s.level)).collect(),
            flags: o.flags.iter().filter(|f| f.source != DRIFT_CHECKER).map(|f| f.code.clone()).collect(),
        }
    }
}

/// How one plan differs from another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanDifference {
    /// The verdict before: `approved` (nothing to approve), `pending_approval`, `rejected` or
    /// `on_hold`.
    pub before: OrderStatus,
    /// The verdict after.
    pub after: OrderStatus,
    /// Stages only the second plan has.
    pub stages_added: Vec<String>,
    /// Stages only the first plan has.
    pub stages_removed: Vec<String>,
    /// Stages both have, with other approvers, quorum or level.
    pub stages_changed: Vec<String>,
    /// Risk flags only the second plan raises.
    pub flags_added: Vec<String>,
    /// Risk flags only the first plan raises.
    pub flags_removed: Vec<String>,
}

fn only_in<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

impl PlanDifference {
    /// The difference from `before` to `after`, or none when they have the same shape.
    pub fn between(before: &PlanShape, after: &PlanShape) -> Option<PlanDifference> {
        let keys = |p: &PlanShape| p.stages.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
        let (b, a) = (keys(before), keys(after));
        let stages_changed = before
            .stages
            .iter()
            .filter(|s| after.stages.iter().any(|t| t.0 == s.0 && t != *s))
            .map(|s| s.0.clone())
            .collect();
        let d = PlanDifference {
            before: before.verdict,
            after: after.verdict,
            stages_added: only_in(&a, &b),
            stages_removed: only_in(&b, &a),
            stages_changed,
            flags_added: only_in(&after.flags, &before.flags),
            flags_removed: only_in(&before.flags, &after.flags),
        };
        let same = d.before == d.after
            && d.stages_added.is_empty()
            && d.stages_removed.is_empty()
            && d.stages_changed.is_empty()
            && d.flags_added.is_empty()
            && d.flags_removed.is_empty();
        (!same).then_some(d)
    }

    /// The difference in one sentence, for the flag and the notification.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.before != self.after {
            parts.push(format!("the verdict would be {} instead of {}", self.after.as_str(), self.before.as_str()));
        }
        for (what, list) in [
            ("stages added", &self.stages_added),
            ("stages removed", &self.stages_removed),
            ("stages changed", &self.stages_changed),
            ("flags added", &self.flags_added),
            ("flags removed", &self.flags_removed),
        ] {
            if !list.is_empty() {
                parts.push(format!("{what}: {}", list.join(", ")));
            }
        }
        format!("the current policy would plan this order differently: {}", parts.join("; "))
    }

    /// The flag a drifted order carries.
    pub fn flag(&self) -> RiskFlag {
        RiskFlag {
            code: DRIFT_FLAG.to_string(),
            severity: Severity::Warning,
            message: self.summary(),
            source: DRIFT_CHECKER.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::{Stage, StageState};

    fn stage(key: &str, user: &str, level: u32) -> Stage {
        Stage {
            key: key.into(),
            title: key.into(),
            level,
            approvers: Approvers::Users { users: vec![user.into()] },
            quorum: Quorum::AtLeast(1),
            due_in_hours: None,
            escalate_to: None,
            due_at: None,
            reason: "r".into(),
            source: "step".into(),
            state: StageState::Waiting,
            decisions: vec![],
            opened_in: None,
        }
    }

    fn assessment(stages: Vec<Stage>, flags: &[&str], outcome: Outcome) -> Assessment {
        Assessment {
            subtotal_minor: 1,
            adjustments: vec![],
            flags: flags
                .iter()
                .map(|c| RiskFlag {
                    code: (*c).into(),
                    severity: Severity::Info,
                    message: "m".into(),
                    source: "s".into(),
                })
                .collect(),
            stages,
            outcome,
        }
    }

    #[test]
    fn the_same_shape_is_no_difference_whatever_was_decided() {
        let a = assessment(vec![stage("manager", "bob", 1)], &["big"], Outcome::Proceed);
        let mut b = a.clone();
        b.stages[0].state = StageState::Approved;
        b.stages[0].title = "another title".into();
        let shape = |a: &Assessment| PlanShape::of_assessment(a);
        assert_eq!(PlanDifference::between(&shape(&a), &shape(&b)), None);
    }

    #[test]
    fn stages_flags_and_verdicts_that_differ_are_named() {
        let before = assessment(vec![stage("manager", "bob", 1), stage("it", "ivan", 1)], &["big"], Outcome::Proceed);
        let after = assessment(
            vec![stage("manager", "carol", 1), stage("executive", "erin", 2)],
            &["vendor"],
            Outcome::Proceed,
        );
        let d = PlanDifference::between(&PlanShape::of_assessment(&before), &PlanShape::of_assessment(&after));
        let d = d.expect("differs");
        assert_eq!(d.stages_added, vec!["executive"]);
        assert_eq!(d.stages_removed, vec!["it"]);
        assert_eq!(d.stages_changed, vec!["manager"]);
        assert_eq!((d.flags_added.clone(), d.flags_removed.clone()), (vec!["vendor".into()], vec!["big".into()]));
        assert_eq!(d.before, d.after);
        let rejected = assessment(vec![], &["big"], Outcome::Reject { by: "step:x".into(), reason: "no".into() });
        let none = assessment(vec![], &["big"], Outcome::Proceed);
        let d = PlanDifference::between(&PlanShape::of_assessment(&before), &PlanShape::of_assessment(&rejected));
        let d = d.expect("differs");
        assert_eq!((d.before, d.after), (OrderStatus::PendingApproval, OrderStatus::Rejected));
        assert!(d.summary().contains("the verdict would be rejected instead of pending_approval"), "{}", d.summary());
        let d = PlanDifference::between(&PlanShape::of_assessment(&none), &PlanShape::of_assessment(&rejected));
        assert_eq!(d.map(|d| d.after), Some(OrderStatus::Rejected));
        assert_eq!(PlanShape::of_assessment(&none).verdict, OrderStatus::Approved, "no stage: approved at once");
    }

    #[test]
    fn an_orders_own_drift_flag_is_not_part_of_its_shape() {
        let a = assessment(vec![stage("manager", "bob", 1)], &["big"], Outcome::Proceed);
        let input = crate::domain::fixtures::input(vec![crate::domain::fixtures::line(1, 1)]);
        let mut order = Order::new_draft("o".into(), "alice".into(), input, 1, chrono::Utc::now());
        order.status = OrderStatus::PendingApproval;
        order.plan.stages = a.stages.clone();
        order.flags = a.flags.clone();
        let drift = PlanDifference::between(
            &PlanShape::of_assessment(&a),
            &PlanShape::of_assessment(&assessment(vec![], &[], Outcome::Proceed)),
        )
        .expect("differs");
        order.flags.push(drift.flag());
        assert_eq!(PlanDifference::between(&PlanShape::of_order(&order), &PlanShape::of_assessment(&a)), None);
        // A step's flag of the same code is the step's: it counts.
        order.flags.push(RiskFlag {
            code: DRIFT_FLAG.into(),
            severity: Severity::Info,
            message: "m".into(),
            source: "x".into(),
        });
        assert!(PlanDifference::between(&PlanShape::of_order(&order), &PlanShape::of_assessment(&a)).is_some());
    }
}
