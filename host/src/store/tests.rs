//! The store: group commit, savepoint isolation, append-only audit, migrations.

use super::*;
use crate::domain::audit::GENESIS;
use crate::domain::delivery::DeliveryKind;
use crate::domain::fixtures;
use crate::domain::order::{Line, Order};
use chrono::Utc;

fn store(dir: &tempfile::TempDir, max_batch: usize) -> Store {
    Store::open(dir.path().join("t.db"), StoreOptions { max_batch, ..StoreOptions::default() }).expect("opens")
}

fn tenant(s: &Store) -> String {
    s.write_blocking(|c| directory::create_tenant(c, "acme").map(|t| t.id)).expect("tenant")
}

fn order(id: &str) -> Order {
    let line = Line { budget_category: Some("hw".into()), ..fixtures::line(1, 5) };
    Order::new_draft(id.into(), "alice".into(), fixtures::input(vec![line]), 5, Utc::now())
}

/// The outbox event of order `id`'s approval.
fn approved_event(id: &str) -> crate::domain::delivery::OutboxEvent {
    let o = order(id);
    crate::domain::delivery::OutboxEvent::new(
        &o,
        "bob",
        crate::domain::machine::Event::OrderApproved { total_minor: 5 },
    )
}

fn count(s: &Store, sql: &'static str) -> i64 {
    s.read_blocking(|c| c.query_row(sql, [], |r| r.get::<_, i64>(0)).map_err(StoreError::from)).expect("count")
}

#[test]
fn a_failing_change_leaves_no_trace_and_does_not_disturb_its_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 64);
    let t = tenant(&s);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..50 {
            let (s, t) = (s.clone(), t.clone());
            handles.push(tokio::spawn(async move {
                s.write(move |c| -> Result<(), StoreError> {
                    orders::insert(c, &t, &order(&format!("o{i}")))?;
                    audit::append(
                        c,
                        &t,
                        Utc::now(),
                        "alice",
                        "order_created",
                        Some(&format!("o{i}")),
                        serde_json::json!({}),
                    )?;
                    outbox::enqueue(c, &t, &approved_event(&format!("o{i}")), "now")?;
                    if i % 5 == 0 {
                        // Fails after writing the order, its audit entry and its outbox row.
                        return Err(StoreError::Corrupt("injected failure".into()));
                    }
                    Ok(())
                })
                .await
            }));
        }
        let mut failed = 0;
        for h in handles {
            if h.await.expect("task").is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 10);
    });
    assert_eq!(count(&s, "SELECT COUNT(*) FROM orders"), 40);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM outbox"), 40);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM order_categories"), 40);
    // The audit chain has no gap where the failed changes were rolled back.
    let report = s.read_blocking(|c| audit::verify(c, &t)).expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, 40);
}

#[test]
fn a_panicking_change_is_rolled_back_and_the_writer_survives() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let t2 = t.clone();
    let r: Result<(), StoreError> = s.write_blocking(move |c| {
        orders::insert(c, &t2, &order("p1"))?;
        panic!("boom");
    });
    // An internal error with an id, never "storage unavailable" or a failed commit.
    assert!(matches!(&r, Err(StoreError::Internal(id)) if id.len() == 32), "{r:?}");
    let t3 = t.clone();
    s.write_blocking(move |c| orders::insert(c, &t3, &order("p2"))).expect("writer still works");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM orders"), 1);
}

#[test]
fn concurrent_changes_share_commits() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 512);
    let t = tenant(&s);
    let before = s.writer_stats();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    rt.block_on(async {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let (s, t) = (s.clone(), t.clone());
                tokio::spawn(async move { s.write(move |c| orders::insert(c, &t, &order(&format!("g{i}")))).await })
            })
            .collect();
        for h in handles {
            h.await.expect("task").expect("insert");
        }
    });
    assert_eq!(count(&s, "SELECT COUNT(*) FROM orders"), 200);
    // Every change counted once; while one commit's fsync ran, the next changes queued up and
    // went into one commit together.
    let done = s.writer_stats().since(&before);
    assert_eq!(done.changes, 200);
    assert!(done.commits < 200, "{done:?}");
    assert!(done.busy > std::time::Duration::ZERO);
}

#[test]
fn the_audit_log_refuses_update_and_delete() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let t2 = t.clone();
    s.write_blocking(move |c| audit::append(c, &t2, Utc::now(), "a", "x", None, serde_json::json!({})))
        .expect("append");
    let upd: Result<usize, StoreError> =
        s.write_blocking(|c| Ok(c.execute("UPDATE audit_log SET actor = 'mallory'", [])?));
    assert!(upd.is_err_and(|e| e.to_string().contains("append-only")));
    let del: Result<usize, StoreError> = s.write_blocking(|c| Ok(c.execute("DELETE FROM audit_log", [])?));
    assert!(del.is_err_and(|e| e.to_string().contains("append-only")));
    let entries = s.read_blocking(|c| audit::page(c, &t, 0, 10)).expect("page");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].prev_hash, GENESIS);
}

#[test]
fn chains_are_per_tenant() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let a = tenant(&s);
    let b = s.write_blocking(|c| directory::create_tenant(c, "globex").map(|t| t.id)).expect("tenant");
    for (t, n) in [(&a, 3), (&b, 2)] {
        for _ in 0..n {
            let t = t.clone();
            s.write_blocking(move |c| audit::append(c, &t, Utc::now(), "a", "x", None, serde_json::json!({})))
                .expect("append");
        }
    }
    let (ra, rb) =
        (s.read_blocking(|c| audit::verify(c, &a)).expect("a"), s.read_blocking(|c| audit::verify(c, &b)).expect("b"));
    assert_eq!((ra.entries, rb.entries), (3, 2));
    assert!(ra.ok && rb.ok);
}

#[test]
fn stale_versions_do_not_overwrite() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let t2 = t.clone();
    s.write_blocking(move |c| orders::insert(c, &t2, &order("v1"))).expect("insert");
    let mut o = order("v1");
    o.version = 1;
    let (t3, o2) = (t.clone(), o.clone());
    assert!(s.write_blocking(move |c| orders::update(c, &t3, &order("v1"), &o2)).expect("update"));
    let t4 = t.clone();
    assert!(!s.write_blocking(move |c| orders::update(c, &t4, &order("v1"), &o)).expect("stale update refused"));
}

#[test]
fn an_update_leaves_the_row_and_its_index_rows_as_an_insert_of_the_result_would() {
    use crate::domain::plan::{Approvers, Quorum, Stage, StageState};
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let before = order("u1");
    let mut after = before.clone();
    after.version = 1;
    after.status = crate::domain::order::OrderStatus::PendingApproval;
    after.submitted_at = Some(Utc::now());
    after.input.cost_center = Some("CC-9".into());
    after.input.lines.push(Line { budget_category: Some("travel".into()), ..fixtures::line(2, 7) });
    after.plan.stages.push(Stage {
        key: "manager".into(),
        title: "Manager".into(),
        level: 1,
        approvers: Approvers::Users { users: vec!["bob".into()] },
        quorum: Quorum::Any,
        due_in_hours: Some(4),
        escalate_to: None,
        due_at: Some(Utc::now()),
        reason: "r".into(),
        source: "s".into(),
        state: StageState::Open,
        decisions: vec![],
        opened_in: None,
    });
    let mut twin = after.clone();
    twin.id = "u2".into();
    let (t2, b, a, tw) = (t.clone(), before.clone(), after.clone(), twin.clone());
    s.write_blocking(move |c| -> Result<(), StoreError> {
        orders::insert(c, &t2, &b)?;
        assert!(orders::update(c, &t2, &b, &a)?);
        orders::insert(c, &t2, &tw)
    })
    .expect("writes");
    // Every column and index row of the updated order equals the twin's, inserted whole.
    let rows = |id: &'static str| {
        s.read_blocking(move |c| -> Result<Vec<String>, StoreError> {
            let row: String = c.query_row(
                "SELECT json_array(status, cost_center, department, currency, total_minor, approved_at, version,
                        submitted_at, decided_at, approval_seconds, rejected_by, due_at, customer_id) FROM orders WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?;
            let mut out = vec![row];
            for sql in [
                "SELECT group_concat(category) FROM (SELECT category FROM order_categories WHERE order_id = ?1 ORDER BY 1)",
                "SELECT group_concat(stage || approver || ifnull(due_at, '')) FROM open_stages WHERE order_id = ?1",
            ] {
                out.push(c.query_row(sql, [id], |r| r.get::<_, Option<String>>(0))?.unwrap_or_default());
            }
            Ok(out)
        })
        .expect("reads")
    };
    let (updated, inserted) = (rows("u1"), rows("u2"));
    assert_eq!(updated, inserted);
    assert!(updated[1].contains("travel") && updated[2].contains("manager"), "{updated:?}");
}

#[test]
fn another_tenants_order_is_not_found() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let t2 = t.clone();
    s.write_blocking(move |c| orders::insert(c, &t2, &order("mine"))).expect("insert");
    assert!(s.read_blocking(|c| orders::load(c, "someone-else", "mine")).expect("load").is_none());
    assert!(s.read_blocking(move |c| orders::load(c, &t, "mine")).expect("load").is_some());
}

#[test]
fn reopening_migrates_nothing_twice_and_refuses_newer_schemas() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("m.db");
    drop(Store::open(&path, StoreOptions::default()).expect("first"));
    drop(Store::open(&path, StoreOptions::default()).expect("second"));
    let c = rusqlite::Connection::open(&path).expect("open");
    c.pragma_update(None, "user_version", schema::VERSION + 1).expect("bump");
    drop(c);
    assert!(matches!(Store::open(&path, StoreOptions::default()), Err(StoreError::TooNew { .. })));
}

#[test]
fn tokens_are_stored_hashed() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let token = directory::new_token().expect("token");
    assert_eq!(token.len(), 4 + 64);
    let (t2, tok) = (t.clone(), token.clone());
    s.write_blocking(move |c| {
        directory::insert_user(
            c,
            &t2,
            &crate::domain::directory::User {
                name: "alice".into(),
                roles: vec![],
                email: None,
                phone: None,
                spend_limit_minor: None,
                budget_minor: None,
                budget_period: None,
            },
        )?;
        directory::insert_token(c, &t2, "alice", &tok, false)
    })
    .expect("token stored");
    let stored: String = s
        .read_blocking(|c| c.query_row("SELECT hash FROM tokens", [], |r| r.get(0)).map_err(StoreError::from))
        .expect("hash");
    assert_ne!(stored, token);
    assert_eq!(stored, directory::token_hash(&token));
    let p = s.read_blocking(move |c| directory::principal(c, &token)).expect("lookup").expect("found");
    assert_eq!(p.user.name, "alice");
    assert!(s.read_blocking(|c| directory::principal(c, "glt_wrong")).expect("lookup").is_none());
}

#[test]
fn one_connector_gets_an_export_and_a_credit_update_of_one_event() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let t2 = t.clone();
    let outbox_id = s
        .write_blocking(move |c| {
            orders::insert(c, &t2, &order("o1"))?;
            outbox::enqueue(c, &t2, &approved_event("o1"), "x")
        })
        .expect("enqueued");
    let targets = vec![("erp".to_string(), DeliveryKind::Export), ("erp".to_string(), DeliveryKind::Credit)];
    let twice = targets.clone();
    let now = Utc::now();
    let t2 = t.clone();
    let made = s.write_blocking(move |c| deliveries::fan_out(c, outbox_id, &t2, &targets, now)).expect("fan out");
    assert_eq!(made, 2, "one per kind");
    let again = s.write_blocking(move |c| deliveries::fan_out(c, outbox_id, &t, &twice, now)).expect("again");
    assert_eq!(again, 0, "and each only once");
}

#[test]
fn a_tenant_notice_is_an_outbox_row_without_an_order_and_comes_back_as_one() {
    use crate::domain::delivery::{Announcement, HOST_MAIL, LockedDuring, TenantNotice};
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let notice = TenantNotice::AccountLocked {
        user: "carol".into(),
        failures: 10,
        during: LockedDuring::StepUp,
        address: "203.0.113.9".into(),
        until: "2026-12-02T03:15:00Z".into(),
    };
    let (t2, n2) = (t.clone(), notice.clone());
    s.write_blocking(move |c| {
        orders::insert(c, &t2, &order("o1"))?;
        outbox::enqueue(c, &t2, &approved_event("o1"), "x")?;
        outbox::enqueue_notice(c, &t2, &n2, "x")
    })
    .expect("enqueued");
    let unfanned = s.read_blocking(|c| deliveries::unfanned(c, 10)).expect("read");
    assert!(matches!(&unfanned[0].event, Announcement::Order(e) if e.order_id == "o1"), "{unfanned:?}");
    assert_eq!(unfanned[1].event, Announcement::Tenant(notice.clone()));
    let (t2, id) = (t.clone(), unfanned[1].outbox_id);
    let now = Utc::now();
    let targets = vec![(HOST_MAIL.to_string(), DeliveryKind::Mail)];
    s.write_blocking(move |c| deliveries::fan_out(c, id, &t2, &targets, now)).expect("fan out");
    let due = s.read_blocking(move |c| deliveries::due(c, now, 10)).expect("due");
    assert_eq!(due.len(), 1);
    let d = &due[0];
    assert_eq!(
        (d.kind, d.channel.as_str(), d.event.as_str(), d.order_id.as_deref()),
        (DeliveryKind::Mail, HOST_MAIL, "account_locked", None)
    );
    assert_eq!(d.payload, Announcement::Tenant(notice));
}

#[test]
fn deliveries_fan_out_once_retry_and_redrive_but_never_redeliver() {
    use crate::domain::delivery::{Attempt, DeliveryState, RetryPolicy};
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let now = Utc::now();
    let t2 = t.clone();
    let outbox_id = s
        .write_blocking(move |c| {
            orders::insert(c, &t2, &order("o1"))?;
            outbox::enqueue(c, &t2, &approved_event("o1"), "x")
        })
        .expect("enqueued");
    let t2 = t.clone();
    let targets = vec![("hook".to_string(), DeliveryKind::Notify), ("erp".to_string(), DeliveryKind::Export)];
    let made = s.write_blocking(move |c| deliveries::fan_out(c, outbox_id, &t2, &targets, now)).expect("fan out");
    assert_eq!(made, 2);
    assert!(s.read_blocking(|c| deliveries::unfanned(c, 10)).expect("read").is_empty(), "fanned out once");
    // Fanning the same event out again creates nothing new.
    let t2 = t.clone();
    let again = vec![("hook".to_string(), DeliveryKind::Notify)];
    assert_eq!(s.write_blocking(move |c| deliveries::fan_out(c, outbox_id, &t2, &again, now)).expect("again"), 0);
    let due = s.read_blocking(move |c| deliveries::due(c, now, 10)).expect("due");
    assert_eq!(due.len(), 2);
    // A failed attempt moves the next one into the future; a delivered one is never due again.
    let policy = RetryPolicy::default();
    let (failed, ok) = (due[0].clone(), due[1].clone());
    let retry = policy.after(0, Attempt::Temporary("503".into()), now, 500);
    let done = policy.after(0, Attempt::Delivered, now, 500);
    s.write_blocking(move |c| {
        deliveries::record(c, &failed.id, &retry, now)?;
        deliveries::record(c, &ok.id, &done, now)
    })
    .expect("recorded");
    assert!(s.read_blocking(move |c| deliveries::due(c, now, 10)).expect("due").is_empty());
    let later = now + chrono::Duration::hours(2);
    assert_eq!(s.read_blocking(move |c| deliveries::due(c, later, 10)).expect("due").len(), 1);
    // Re-drive: the retrying one is due now with fresh attempts; the delivered one cannot be.
    let (t2, id_failed, id_ok) = (t.clone(), due[0].id.clone(), due[1].id.clone());
    let (a, b) = s
        .write_blocking(move |c| -> Result<(bool, bool), StoreError> {
            Ok((deliveries::redrive(c, &t2, &id_failed, now)?, deliveries::redrive(c, &t2, &id_ok, now)?))
        })
        .expect("redrive");
    assert_eq!((a, b), (true, false));
    let t2 = t.clone();
    let listed = s
        .read_blocking(move |c| {
            deliveries::list(c, &t2, deliveries::Listing::State(DeliveryState::Delivered), 10, None)
        })
        .expect("list");
    assert_eq!(listed.len(), 1);
    // Another tenant sees none of them.
    let other = s.write_blocking(|c| directory::create_tenant(c, "globex").map(|t| t.id)).expect("tenant");
    let id = due[0].id.clone();
    assert!(s.read_blocking(move |c| deliveries::get(c, &other, &id)).expect("get").is_none());
}

#[test]
fn role_holders_are_counted_without_the_requester_and_up_to_a_cap() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let t2 = t.clone();
    s.write_blocking(move |c| -> Result<(), StoreError> {
        for (name, roles) in
            [("ann", &["approver", "finance"][..]), ("ben", &["approver"][..]), ("cid", &["requester"][..])]
        {
            let user = crate::domain::directory::User {
                name: name.into(),
                roles: roles.iter().map(|r| r.parse().expect("role")).collect(),
                email: None,
                phone: None,
                spend_limit_minor: None,
                budget_minor: None,
                budget_period: None,
            };
            directory::insert_user(c, &t2, &user)?;
        }
        Ok(())
    })
    .expect("users");
    let count = |role: &'static str, except: &'static str, at_most: usize| {
        let t = t.clone();
        s.read_blocking(move |c| directory::role_holders(c, &t, role, except, at_most)).expect("count")
    };
    assert_eq!(count("approver", "cid", 100), 2);
    assert_eq!(count("approver", "ann", 100), 1, "the requester does not count");
    assert_eq!(count("approver", "cid", 1), 1, "counting stops at the cap");
    assert_eq!(count("executive", "cid", 100), 0);
    let t2 = t.clone();
    let finance = s.read_blocking(move |c| directory::users_with_role(c, &t2, "finance")).expect("finance");
    assert_eq!(finance.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["ann"]);
}

#[test]
fn budget_sums_that_overflow_or_pass_the_largest_amount_are_none_not_errors() {
    use crate::domain::money::MAX_AMOUNT_MINOR;
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let t2 = t.clone();
    s.write_blocking(move |c| -> Result<(), StoreError> {
        for i in 0..3 {
            let mut o = order(&format!("o{i}"));
            o.status = crate::domain::order::OrderStatus::Approved;
            o.approved_at = Some(Utc::now());
            orders::insert(c, &t2, &o)?;
        }
        Ok(())
    })
    .expect("orders");
    let since = crate::domain::audit::timestamp(Utc::now() - chrono::Duration::days(1));
    let spent = |s: &Store| {
        let (t, since) = (t.clone(), since.clone());
        s.read_blocking(move |c| orders::spent(c, &t, orders::Budget::Requester("alice"), &since, "none"))
            .expect("a sum or None, never an error")
    };
    assert_eq!(spent(&s), Some(15));
    // Totals stored before amounts were bounded: past the largest amount, then past i64.
    let db = rusqlite::Connection::open(dir.path().join("t.db")).expect("db");
    db.execute("UPDATE orders SET total_minor = ?1 WHERE id = 'o0'", [MAX_AMOUNT_MINOR]).expect("update");
    assert_eq!(spent(&s), None);
    db.execute("UPDATE orders SET total_minor = 5000000000000000000 WHERE id IN ('o1', 'o2')", []).expect("update");
    assert_eq!(spent(&s), None);
}

#[test]
fn every_script_version_is_kept_and_cannot_be_removed() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let t2 = t.clone();
    s.write_blocking(move |c| -> Result<(), StoreError> {
        extensions::upsert_script(c, &t2, "rule", "fn evaluate(ctx) { #{} }", "h1", "now")?;
        extensions::upsert_script(c, &t2, "rule", "fn evaluate(ctx) { #{ } }", "h2", "later")?;
        extensions::upsert_script(c, &t2, "rule", "fn evaluate(ctx) { #{} }", "h1", "again")?;
        Ok(())
    })
    .expect("written");
    assert_eq!(count(&s, "SELECT count(*) FROM script_versions"), 2);
    let t3 = t.clone();
    let old = s.read_blocking(move |c| extensions::script_version(c, &t3, "h1")).expect("read");
    assert_eq!(old.map(|(n, src)| (n, src.len())), Some(("rule".to_string(), 24)));
    let removed = s.write_blocking(|c| c.execute("DELETE FROM script_versions", []).map_err(StoreError::from));
    assert!(removed.is_err(), "the versions explain past decisions");
}

#[test]
fn the_drift_report_reads_only_overrides_in_its_period_through_their_index() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 8);
    let t = tenant(&s);
    let at = |ts: &str| chrono::DateTime::parse_from_rfc3339(ts).expect("time").with_timezone(&Utc);
    let t2 = t.clone();
    s.write_blocking(move |c| -> Result<(), StoreError> {
        let add = |when: &str, actor: &str, action: &str, data: serde_json::Value| {
            audit::append(c, &t2, at(when), actor, action, Some("o1"), data).map(|_| ())
        };
        add("2026-03-01T00:00:00Z", "greenlight:drift-check", "policy_drift", serde_json::json!({"difference": {}}))?;
        add("2026-03-02T00:00:00Z", "bob", "decision_recorded", serde_json::json!({"stage": "s"}))?;
        add("2026-03-03T00:00:00Z", "dave", "decision_recorded", serde_json::json!({"escalation_target": true}))?;
        add("2026-03-04T00:00:00Z", "ada", "approval_revoked", serde_json::json!({"reason": "r"}))?;
        add("2026-03-05T00:00:00Z", "greenlight:release", "order_released", serde_json::json!({}))?;
        add("2026-03-06T00:00:00Z", "fiona", "order_released", serde_json::json!({}))?;
        add("2026-04-01T00:00:00Z", "ada", "approval_revoked", serde_json::json!({"reason": "later"}))?;
        Ok(())
    })
    .expect("entries");
    let t3 = t.clone();
    let found = s
        .read_blocking(move |c| audit::overrides(c, &t3, at("2026-03-01T00:00:00Z"), at("2026-04-01T00:00:00Z"), 100))
        .expect("reads");
    let seen: Vec<(&str, &str)> = found.iter().map(|e| (e.actor.as_str(), e.action.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("greenlight:drift-check", "policy_drift"),
            ("dave", "decision_recorded"),
            ("ada", "approval_revoked"),
            ("fiona", "order_released")
        ],
        "an approver's own decision and the ERP's release are no overrides; April is outside"
    );
    let found = s
        .read_blocking(move |c| {
            audit::overrides(c, "another", at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), 100)
        })
        .expect("reads");
    assert!(found.is_empty(), "another tenant's entries never show");
}

#[test]
fn closing_commits_what_was_sent_and_leaves_no_log_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = store(&dir, 64);
    let t = tenant(&s);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
    let pending: Vec<_> = (0..100)
        .map(|i| {
            let t = t.clone();
            s.submit(move |c| orders::insert(c, &t, &order(&format!("c{i}"))))
        })
        .collect();
    s.close();
    for p in pending {
        assert!(rt.block_on(p).expect("answered").is_ok(), "a change sent before close was committed");
    }
    let wal = dir.path().join("t.db-wal");
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0, "the log was copied and truncated");
    let again = store(&dir, 8);
    assert_eq!(count(&again, "SELECT count(*) FROM orders"), 100);
}
