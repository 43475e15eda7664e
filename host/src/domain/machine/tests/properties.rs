//! Property tests over random command sequences: every transition ends in a status its rule
//! allows, refusals match the table, and the audit chain is hashed by the test itself from the
//! documented canonical form.

use super::*;
use crate::domain::audit::{AuditEntry, verify};
use proptest::prelude::*;

const PEOPLE: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

fn person(i: usize, roles_mask: u8) -> Actor {
    let all = ["approver", "compliance", "admin", "finance"];
    let roles: Vec<&str> =
        all.iter().enumerate().filter(|(b, _)| roles_mask & (1 << b) != 0).map(|(_, r)| *r).collect();
    actor(PEOPLE[i % PEOPLE.len()], &roles)
}

fn arb_stage(i: usize) -> impl Strategy<Value = Stage> {
    (1u32..=3, 0usize..4, 0u32..3, 0u32..4).prop_map(move |(level, who, q, due)| {
        let approvers = match who {
            0 => role("approver"),
            1 => role("compliance"),
            2 => Approvers::Users { users: vec!["bob".into(), "carol".into(), "dave".into()] },
            _ => manager("bob"),
        };
        let quorum = match (q, &approvers) {
            (1, Approvers::Users { .. }) => Quorum::All,
            (2, Approvers::Role { .. }) => Quorum::AtLeast(2),
            _ => Quorum::Any,
        };
        let mut s = stage(&format!("s{i}"), level, approvers, quorum);
        // Some stages fall due (0 or 2 hours after opening) and escalate to the executives or,
        // naming nobody, to the admins.
        s.due_in_hours = [None, Some(0), Some(2), Some(2)][due as usize];
        s.escalate_to = (due == 3).then(|| role("executive"));
        s
    })
}

fn arb_plan() -> impl Strategy<Value = Vec<Stage>> {
    (0usize..4).prop_flat_map(|n| (0..n).map(arb_stage).collect::<Vec<_>>()).prop_map(|mut v| {
        v.sort_by_key(|s| s.level);
        v
    })
}

#[derive(Debug, Clone)]
enum Op {
    Submit(Vec<Stage>, u8),
    /// New stages; whether the edit turns the order into a subscription or out of one.
    Edit(Vec<Stage>, bool),
    Decide(usize, u8, usize, bool, bool),
    Withdraw(usize),
    Revoke(usize, u8),
    Release(usize, u8),
    Deactivate,
    Reactivate,
    Escalate(u8),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (arb_plan(), 0u8..10).prop_map(|(p, o)| Op::Submit(p, o)),
        (arb_plan(), any::<bool>()).prop_map(|(p, toggle)| Op::Edit(p, toggle)),
        (0usize..5, 0u8..16, 0usize..4, any::<bool>(), any::<bool>())
            .prop_map(|(p, r, s, a, c)| Op::Decide(p, r, s, a, c)),
        (0usize..5, 0u8..16, 0usize..4, Just(true), Just(false)).prop_map(|(p, r, s, a, c)| Op::Decide(p, r, s, a, c)),
        (0usize..5, 0u8..16, 0usize..4, Just(true), Just(false)).prop_map(|(p, r, s, a, c)| Op::Decide(p, r, s, a, c)),
        (0usize..5).prop_map(Op::Withdraw),
        (0usize..5, 0u8..16).prop_map(|(p, r)| Op::Revoke(p, r)),
        (0usize..5, 0u8..16).prop_map(|(p, r)| Op::Release(p, r)),
        Just(Op::Deactivate),
        Just(Op::Reactivate),
        (0u8..4).prop_map(Op::Escalate),
    ]
}

fn command(op: Op, order: &Order) -> Command {
    let requester = actor("alice", &["approver"]);
    match op {
        Op::Submit(stages, o) => {
            let outcome = match o {
                0 => Outcome::Hold { reason: "step failed".into() },
                1 => Outcome::Reject { by: "step:x".into(), reason: "no".into() },
                _ => Outcome::Proceed,
            };
            Command::Submit { by: requester, assessment: assessment(stages, outcome), at: at() }
        }
        Op::Edit(stages, toggle) => Command::Edit {
            by: requester,
            input: {
                let mut input = order.input.clone();
                if toggle {
                    input.recurrence = match input.recurrence {
                        Some(_) => None,
                        None => Some(Recurrence { interval: "P1M".into() }),
                    };
                }
                input
            },
            subtotal_minor: order.subtotal_minor,
            assessment: Some(assessment(stages, Outcome::Proceed)),
            at: at(),
        },
        Op::Decide(p, r, s, approve, comment) => Command::Decide {
            by: person(p, r),
            on_behalf_of: None,
            stage: format!("s{s}"),
            verdict: if approve { Verdict::Approve } else { Verdict::Reject },
            comment: comment.then(|| "reason".to_string()),
            via: None,
            at: at(),
        },
        Op::Withdraw(p) => Command::Withdraw { by: person(p, 0), at: at() },
        Op::Revoke(p, r) => Command::Revoke { by: person(p, r), reason: "wrong".into(), at: at() },
        Op::Release(p, r) => Command::Release { by: person(p, r), at: at() },
        Op::Deactivate => Command::Deactivate { by: requester, at: at() },
        Op::Reactivate => Command::Reactivate { by: requester, at: at() },
        Op::Escalate(h) => Command::Escalate { at: at() + chrono::Duration::hours(i64::from(h)) },
    }
}

/// JSON the way the audit chain's documentation defines it, written out here instead of taken
/// from the host: compact, object keys sorted by their bytes, strings with JSON's escapes.
fn canonical_json(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                canonical_json(&o[k], out);
            }
            out.push('}');
        }
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The next entry of a chain, hashed as the README documents it: SHA-256 over `prev_hash`, a
/// newline, and `{"seq","at","actor","action","order_id","data"}` in that order, canonical JSON.
/// The host's own [`AuditEntry::next`] must agree.
fn independent_entry(
    prev: Option<&AuditEntry>,
    actor: &str,
    action: &str,
    order_id: &str,
    data: serde_json::Value,
) -> AuditEntry {
    use sha2::{Digest, Sha256};
    let (seq, prev_hash) =
        prev.map(|p| (p.seq + 1, p.hash.clone())).unwrap_or((1, crate::domain::audit::GENESIS.into()));
    let at_text = crate::domain::audit::timestamp(at());
    let mut text = format!("{prev_hash}\n{{\"seq\":{seq},\"at\":");
    json_string(&at_text, &mut text);
    text.push_str(",\"actor\":");
    json_string(actor, &mut text);
    text.push_str(",\"action\":");
    json_string(action, &mut text);
    text.push_str(",\"order_id\":");
    json_string(order_id, &mut text);
    text.push_str(",\"data\":");
    canonical_json(&data, &mut text);
    text.push('}');
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    let host =
        AuditEntry::next(prev.map(|p| (p.seq, p.hash.as_str())), at(), actor, action, Some(order_id), data.clone());
    assert_eq!(host.hash, hash, "the host hashes {action} differently from the documented form: {text}");
    AuditEntry {
        seq,
        at: at_text,
        actor: actor.into(),
        action: action.into(),
        order_id: Some(order_id.into()),
        data,
        prev_hash,
        hash,
    }
}

fn check_invariants(order: &Order, policy: &Policy) -> Result<(), TestCaseError> {
    if matches!(order.status, OrderStatus::Approved | OrderStatus::Released) {
        for s in &order.plan.stages {
            prop_assert!(
                s.state == StageState::Approved && s.satisfied(),
                "approved order with unsatisfied stage {}",
                s.key
            );
        }
    }
    for s in &order.plan.stages {
        prop_assert!(!s.decided_by(&order.requester), "the requester decided stage {}", s.key);
        let mut seen: Vec<&str> = s.decisions.iter().map(|d| d.by.as_str()).collect();
        let n = seen.len();
        seen.sort_unstable();
        seen.dedup();
        prop_assert_eq!(seen.len(), n, "someone counted twice on stage {}", &s.key);
        if s.state == StageState::Approved {
            prop_assert!(s.satisfied());
        }
        if s.state == StageState::Escalated {
            prop_assert!(s.due_at.is_some(), "stage {} escalated without a due time", &s.key);
        }
    }
    if policy.one_stage_per_person {
        for p in PEOPLE {
            let stages = order.plan.stages.iter().filter(|s| s.decided_by(p)).count();
            prop_assert!(stages <= 1, "{} decided {} stages", p, stages);
        }
    }
    if order.status == OrderStatus::PendingApproval {
        prop_assert!(order.plan.open_stages().count() > 0, "pending order with no open stage");
        let level = order.plan.current_level();
        prop_assert!(
            order.plan.open_stages().all(|s| Some(s.level) == level),
            "a stage is open beyond the current level"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_the_invariants(
        recurring in any::<bool>(),
        sod in any::<bool>(),
        ops in proptest::collection::vec(arb_op(), 1..40),
    ) {
        let policy = Policy { one_stage_per_person: sod, ..Policy::default() };
        let mut order = draft(recurring);
        let mut chain: Vec<AuditEntry> = Vec::new();
        for op in ops {
            let cmd = command(op, &order);
            let (kind, actor_name) = (cmd.kind(), cmd.actor().to_string());
            match apply(&order, cmd, &policy) {
                Ok(t) => {
                    prop_assert_eq!(t.order.version, order.version + 1);
                    prop_assert!(!t.events.is_empty());
                    let rule = table::rule_for(&order, kind);
                    prop_assert!(rule.is_some_and(|r| r.to.contains(&t.order.status)), "{:?} took {:?} to {:?}", kind, order.status, t.order.status);
                    let subscription_event = t.events.iter().any(|e| matches!(e, Event::SubscriptionDeactivated | Event::SubscriptionReactivated));
                    if subscription_event {
                        prop_assert!(order.is_subscription(), "a subscription event on an order that is not one");
                        prop_assert!(
                            matches!(order.status, OrderStatus::Approved | OrderStatus::Released)
                                && order.status == t.order.status,
                            "a subscription event on a {:?} order", order.status
                        );
                    }
                    prop_assert_eq!(t.order.is_subscription(), t.order.input.recurrence.is_some());
                    for e in &t.events {
                        let data = serde_json::to_value(e).unwrap_or_default();
                        let entry = independent_entry(chain.last(), &actor_name, e.action(), &order.id, data);
                        chain.push(entry);
                    }
                    order = t.order;
                    check_invariants(&order, &policy)?;
                }
                Err(e) => {
                    // A refused command changes nothing (the order value is untouched by design);
                    // the refusal must be one the rules explain.
                    let rule = table::rule_for(&order, kind);
                    match (&e, rule) {
                        (TransitionError::Forbidden(_), _) => {}
                        (TransitionError::InvalidState(m), None) => prop_assert_eq!(m, &table::refusal(&order, kind)),
                        (TransitionError::InvalidState(m), Some(_)) => prop_assert!(
                            matches!(kind, CommandKind::Decide | CommandKind::Deactivate | CommandKind::Reactivate | CommandKind::Escalate),
                            "{:?} refused by its own state check although the table allows it: {}", kind, m
                        ),
                        (TransitionError::Invalid { field, .. }, Some(_)) => prop_assert!(
                            matches!((kind, field.as_str()), (CommandKind::Decide, "comment" | "stage") | (CommandKind::Revoke, "reason") | (CommandKind::Edit, "recurrence")),
                            "{:?} refused as invalid {}: {}", kind, field, e
                        ),
                        (TransitionError::Invalid { .. }, None) => prop_assert!(false, "{:?} in {:?} refused as invalid before the table: {}", kind, order.status, e),
                    }
                }
            }
        }
        let report = verify(&chain);
        prop_assert!(report.ok, "the domain's verifier refuses a chain hashed by the documented form: {:?}", report);
        if let Some(last) = chain.last() {
            prop_assert_eq!(&report.head_hash, &last.hash);
        }
    }

    #[test]
    fn approval_of_every_stage_in_level_order_always_approves(plan in arb_plan()) {
        let policy = Policy { one_stage_per_person: false, ..Policy::default() };
        let mut order = submit(&draft(false), plan).order;
        let deciders = [actor("bob", &["approver", "compliance"]), actor("carol", &["approver", "compliance"]), actor("dave", &["approver", "compliance"])];
        let mut guard = 0;
        while order.status == OrderStatus::PendingApproval && guard < 100 {
            guard += 1;
            let key = order.plan.open_stages().next().map(|s| s.key.clone());
            let Some(key) = key else { break };
            for d in &deciders {
                if let Ok(t) = decide(&order, d.clone(), &key, Verdict::Approve, None, &policy) {
                    order = t.order;
                    break;
                }
            }
        }
        prop_assert_eq!(order.status, OrderStatus::Approved);
        prop_assert!(order.plan.all_approved());
    }
}
