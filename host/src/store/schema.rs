//! Versioned migrations, tracked in `PRAGMA user_version`. Append new steps; never edit old ones.

use super::StoreError;
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the core schema.
    r#"
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE users (
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        roles TEXT NOT NULL,
        email TEXT,
        phone TEXT,
        spend_limit_minor INTEGER,
        budget_minor INTEGER,
        budget_period TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE tokens (
        hash TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        FOREIGN KEY (tenant_id, user_name) REFERENCES users(tenant_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE cost_centers (
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        code TEXT NOT NULL,
        manager TEXT NOT NULL,
        budget_minor INTEGER,
        PRIMARY KEY (tenant_id, code)
    ) WITHOUT ROWID;
    CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        requester TEXT NOT NULL,
        status TEXT NOT NULL,
        cost_center TEXT,
        department TEXT,
        currency TEXT NOT NULL,
        total_minor INTEGER NOT NULL,
        approved_at TEXT,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX orders_by_tenant ON orders (tenant_id, id);
    CREATE INDEX orders_by_status ON orders (tenant_id, status, id);
    CREATE INDEX orders_by_requester ON orders (tenant_id, requester, id);
    CREATE INDEX orders_by_cost_center ON orders (tenant_id, cost_center, id);
    CREATE INDEX orders_by_department ON orders (tenant_id, department, id);
    -- Covering indexes: budget sums read only the index, never the order documents.
    CREATE INDEX orders_spent_by_requester ON orders (tenant_id, requester, status, approved_at, total_minor, id);
    CREATE INDEX orders_spent_by_cost_center ON orders (tenant_id, cost_center, status, approved_at, total_minor, id);
    CREATE TABLE order_categories (
        tenant_id TEXT NOT NULL,
        category TEXT NOT NULL,
        order_id TEXT NOT NULL REFERENCES orders(id),
        PRIMARY KEY (tenant_id, category, order_id)
    ) WITHOUT ROWID;
    CREATE INDEX order_categories_by_order ON order_categories (order_id);
    CREATE TABLE open_stages (
        tenant_id TEXT NOT NULL,
        order_id TEXT NOT NULL REFERENCES orders(id),
        stage TEXT NOT NULL,
        approver_kind TEXT NOT NULL,
        approver TEXT NOT NULL,
        PRIMARY KEY (tenant_id, approver_kind, approver, order_id, stage)
    ) WITHOUT ROWID;
    CREATE INDEX open_stages_by_order ON open_stages (order_id);
    CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        order_id TEXT NOT NULL REFERENCES orders(id),
        at TEXT NOT NULL,
        context TEXT NOT NULL,
        runs TEXT NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE INDEX evaluations_by_order ON evaluations (order_id, id);
    CREATE TABLE audit_log (
        tenant_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        order_id TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (tenant_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX audit_by_order ON audit_log (tenant_id, order_id, seq);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be changed'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be deleted'); END;
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        order_id TEXT,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT
    );
    CREATE INDEX outbox_pending ON outbox (state, next_attempt_at, id);
    CREATE TABLE scripts (
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        source TEXT NOT NULL,
        hash TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE tenant_extensions (
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 0,
        position INTEGER NOT NULL DEFAULT 100,
        config TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (tenant_id, name)
    ) WITHOUT ROWID;
    "#,
    // 2: WASM and native plugins: the host-wide catalog, every version ever installed (so any
    // decision can be traced to its code), the precompiled artifacts the host produced itself,
    // and per-tenant capability grants.
    r#"
    CREATE TABLE plugins (
        name TEXT PRIMARY KEY,
        code_hash TEXT NOT NULL,
        installed_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE plugin_versions (
        code_hash TEXT NOT NULL,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        world TEXT NOT NULL,
        kind TEXT NOT NULL,
        manifest TEXT NOT NULL,
        installed_at TEXT NOT NULL,
        PRIMARY KEY (name, code_hash)
    ) WITHOUT ROWID;
    CREATE TABLE artifacts (
        code_hash TEXT NOT NULL,
        engine_hash TEXT NOT NULL,
        artifact_sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (code_hash, engine_hash)
    ) WITHOUT ROWID;
    ALTER TABLE tenant_extensions ADD COLUMN grants TEXT NOT NULL DEFAULT '{}';
    "#,
    // 3: escalation and delegation (R6): when each open stage falls due, so the escalator finds
    // overdue stages by index; and who lends their authority to whom, when.
    r#"
    ALTER TABLE open_stages ADD COLUMN due_at TEXT;
    CREATE INDEX open_stages_due ON open_stages (due_at) WHERE due_at IS NOT NULL;
    CREATE TABLE delegations (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        delegator TEXT NOT NULL,
        delegate TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        until TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX delegations_by_delegate ON delegations (tenant_id, delegate, until);
    CREATE INDEX delegations_by_delegator ON delegations (tenant_id, delegator, until);
    "#,
    // 4: deliveries: each outbox event fanned out to each of the tenant's notification channels,
    // with its attempts, next attempt and last error; `dead` ones wait for an admin.
    r#"
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        outbox_id INTEGER NOT NULL REFERENCES outbox(id),
        tenant_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        UNIQUE (outbox_id, channel)
    );
    CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
    CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, state, id);
    CREATE INDEX outbox_unfanned ON outbox (state, id);
    "#,
    // 5: a delivery either notifies (a notifier plugin) or exports an approved order to the ERP
    // (a connector plugin); exports release the order.
    r#"
    ALTER TABLE deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'notify';
    "#,
    // 6: customer authorization certificates (R4), issued with the approval of a customer order.
    r#"
    CREATE TABLE authorizations (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        order_id TEXT NOT NULL REFERENCES orders(id),
        customer_id TEXT NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX authorizations_by_customer ON authorizations (tenant_id, customer_id, id);
    CREATE INDEX authorizations_by_order ON authorizations (tenant_id, order_id, id);
    "#,
    // 7: one event may reach one connector twice, as two kinds of delivery (the export of an
    // approved order and the customer's credit update, R4): unique per (event, channel, kind).
    // SQLite cannot change a table's constraint, so the table is rebuilt with its rows.
    r#"
    CREATE TABLE deliveries_v7 (
        id TEXT PRIMARY KEY,
        outbox_id INTEGER NOT NULL REFERENCES outbox(id),
        tenant_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        kind TEXT NOT NULL DEFAULT 'notify',
        UNIQUE (outbox_id, channel, kind)
    );
    INSERT INTO deliveries_v7 (id, outbox_id, tenant_id, channel, state, attempts, next_attempt_at, last_error, created_at, delivered_at, kind)
        SELECT id, outbox_id, tenant_id, channel, state, attempts, next_attempt_at, last_error, created_at, delivered_at, kind FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v7 RENAME TO deliveries;
    CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
    CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, state, id);
    "#,
    // 8: the request view's two-filter pages (status with cost center, status with requester)
    // are served by one index each, in `id` order, instead of scanning one filter's rows for the
    // other: a page costs the same whichever status is rare.
    r#"
    CREATE INDEX orders_by_status_cost_center ON orders (tenant_id, status, cost_center, id);
    CREATE INDEX orders_by_status_requester ON orders (tenant_id, status, requester, id);
    "#,
    // 9: attachments (R9). A document's bytes are kept once per SHA-256, in the database, so a
    // document, its attachment row and its audit entry commit together or not at all; neither is
    // ever changed or removed.
    r#"
    CREATE TABLE blobs (
        sha256 TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE attachments (
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        order_id TEXT NOT NULL REFERENCES orders(id),
        sha256 TEXT NOT NULL REFERENCES blobs(sha256),
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        added_by TEXT NOT NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, order_id, sha256)
    ) WITHOUT ROWID;
    CREATE TRIGGER blobs_no_update BEFORE UPDATE ON blobs BEGIN SELECT RAISE(ABORT, 'stored documents are never changed'); END;
    CREATE TRIGGER blobs_no_delete BEFORE DELETE ON blobs BEGIN SELECT RAISE(ABORT, 'stored documents are never removed'); END;
    CREATE TRIGGER attachments_no_update BEFORE UPDATE ON attachments BEGIN SELECT RAISE(ABORT, 'attachments are never changed'); END;
    CREATE TRIGGER attachments_no_delete BEFORE DELETE ON attachments BEGIN SELECT RAISE(ABORT, 'attachments are never removed'); END;
    "#,
    // 10: who holds which role, one row each, so "how many users other than the requester hold
    // this role" and "who holds it" are index lookups instead of a scan of every user's roles.
    r#"
    CREATE TABLE user_roles (
        tenant_id TEXT NOT NULL,
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (tenant_id, role, name),
        FOREIGN KEY (tenant_id, name) REFERENCES users(tenant_id, name)
    ) WITHOUT ROWID;
    INSERT INTO user_roles (tenant_id, role, name)
        SELECT u.tenant_id, j.value, u.name FROM users u, json_each(u.roles) j;
    "#,
    // 11: reports (R10, R4). The moments and facts a summary counts by, kept in columns at
    // every write so a report over a million orders reads only indexes: when the order was last
    // submitted, when it reached its outcome, seconds from submission to approval, the step behind
    // a rejection, the earliest due time of its undecided stages, and its customer. Rows written
    // before are filled from their documents (times normalized to the writer's format). Which
    // steps are compliance rules is the tenant's word, on its extension settings. Escalations are
    // counted from the audit log by a partial index.
    r#"
    ALTER TABLE orders ADD COLUMN submitted_at TEXT;
    ALTER TABLE orders ADD COLUMN decided_at TEXT;
    ALTER TABLE orders ADD COLUMN approval_seconds INTEGER;
    ALTER TABLE orders ADD COLUMN rejected_by TEXT;
    ALTER TABLE orders ADD COLUMN due_at TEXT;
    ALTER TABLE orders ADD COLUMN customer_id TEXT;
    UPDATE orders SET
        submitted_at = strftime('%Y-%m-%dT%H:%M:%f000Z', json_extract(doc, '$.submitted_at')),
        customer_id = json_extract(doc, '$.input.customer_id'),
        decided_at = CASE
            WHEN status IN ('approved', 'released') THEN strftime('%Y-%m-%dT%H:%M:%f000Z', json_extract(doc, '$.approved_at'))
            WHEN status IN ('rejected', 'withdrawn') THEN strftime('%Y-%m-%dT%H:%M:%f000Z', json_extract(doc, '$.updated_at'))
        END,
        approval_seconds = CASE WHEN status IN ('approved', 'released') THEN
            max(0, CAST(unixepoch(json_extract(doc, '$.approved_at'), 'subsec') - unixepoch(json_extract(doc, '$.submitted_at'), 'subsec') AS INTEGER)) END,
        rejected_by = CASE WHEN status = 'rejected' THEN
            CASE WHEN json_extract(doc, '$.rejection.by') LIKE 'step:%' THEN substr(json_extract(doc, '$.rejection.by'), 6)
            ELSE (SELECT json_extract(s.value, '$.source') FROM json_each(doc, '$.plan.stages') s
                  WHERE json_extract(s.value, '$.key') = json_extract(doc, '$.rejection.stage')) END END,
        due_at = CASE WHEN status = 'pending_approval' THEN
            (SELECT min(strftime('%Y-%m-%dT%H:%M:%f000Z', json_extract(s.value, '$.due_at'))) FROM json_each(doc, '$.plan.stages') s
             WHERE json_extract(s.value, '$.state') IN ('open', 'escalated')) END;
    CREATE INDEX orders_decided ON orders (tenant_id, decided_at, status, approval_seconds, rejected_by, cost_center, department, customer_id)
        WHERE decided_at IS NOT NULL;
    CREATE INDEX orders_open ON orders (tenant_id, status, submitted_at, due_at, cost_center, department, customer_id)
        WHERE status IN ('on_hold', 'pending_approval');
    CREATE INDEX audit_escalations ON audit_log (tenant_id, at, order_id) WHERE action = 'stage_escalated';
    ALTER TABLE tenant_extensions ADD COLUMN compliance INTEGER NOT NULL DEFAULT 0;
    "#,
    // 12: the dashboard's sign-in. A user's password, as an argon2id hash (PHC string); browser
    // sessions, known by the SHA-256 of their cookie, with the form token that must come back
    // with every change (CSRF) and the times that end them.
    r#"
    ALTER TABLE users ADD COLUMN password_hash TEXT;
    CREATE TABLE sessions (
        hash TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        FOREIGN KEY (tenant_id, user_name) REFERENCES users(tenant_id, name)
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_user ON sessions (tenant_id, user_name);
    "#,
    // 13: the shipped catalog. The scripts a host offers every tenant (a tenant adopts a copy,
    // remembering which catalog version it copied), and plugin versions the catalog brought
    // while another version of the name is current: offered, never swapped in silently.
    r#"
    CREATE TABLE catalog_scripts (
        name TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        hash TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE scripts ADD COLUMN catalog_hash TEXT;
    CREATE TABLE plugin_offers (
        name TEXT PRIMARY KEY,
        code_hash TEXT NOT NULL,
        version TEXT NOT NULL,
        offered_at TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 14: every version of a tenant's scripts, by content hash, so an evaluation can be replayed
    // with exactly the code that made it; never changed or removed.
    r#"
    CREATE TABLE script_versions (
        tenant_id TEXT NOT NULL,
        hash TEXT NOT NULL,
        name TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, hash)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO script_versions (tenant_id, hash, name, source, created_at)
        SELECT tenant_id, hash, name, source, updated_at FROM scripts;
    CREATE TRIGGER script_versions_no_update BEFORE UPDATE ON script_versions
        BEGIN SELECT RAISE(ABORT, 'script versions are kept as they were: they explain past decisions'); END;
    CREATE TRIGGER script_versions_no_delete BEFORE DELETE ON script_versions
        BEGIN SELECT RAISE(ABORT, 'script versions are never removed: they explain past decisions'); END;
    "#,
    // 15: decision links from notification e-mails are single-use: the nonce of each one used,
    // written in the transaction of the decision it made.
    r#"
    CREATE TABLE used_links (
        nonce TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        used_at TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 16: policy drift (R8). When each tenant's pending orders were last checked against its
    // rules, and under which rules (their hash), so a change of rules or the schedule triggers
    // the next check, even after a restart; and the audit entries the drift report lists
    // (drift found and cleared, revoked approvals, releases by hand, decisions by escalation
    // targets) by a partial index, so the report reads only them.
    r#"
    CREATE TABLE drift_checks (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
        policy_hash TEXT NOT NULL,
        checked_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX audit_overrides ON audit_log (tenant_id, at)
        WHERE action IN ('policy_drift', 'policy_drift_cleared', 'approval_revoked')
           OR (action = 'order_released' AND actor <> 'greenlight:release')
           OR (action = 'decision_recorded' AND json_extract(data, '$.escalation_target') = 1);
    "#,
    // 17: an index no query reads (the dispatcher finds new outbox events by `outbox_unfanned`),
    // which every submit still wrote.
    r#"
    DROP INDEX outbox_pending;
    "#,
    // 18: access review. A user can be disabled (kept for the record, never deleted); who did
    // what last is read from the audit chain by actor: any entry, sign-ins and decisions.
    r#"
    ALTER TABLE users ADD COLUMN disabled_at TEXT;
    CREATE INDEX tokens_by_user ON tokens (tenant_id, user_name, created_at);
    CREATE INDEX audit_by_actor ON audit_log (tenant_id, actor, seq);
    CREATE INDEX audit_sign_ins ON audit_log (tenant_id, actor, seq) WHERE action = 'signed_in';
    CREATE INDEX audit_decisions ON audit_log (tenant_id, actor, seq) WHERE action = 'decision_recorded';
    "#,
    // 19: access attempts (sign-ins, refused API calls) for anomaly detection; those of an
    // unknown tenant or token have no tenant.
    r#"
    CREATE TABLE access_attempts (
        id INTEGER PRIMARY KEY,
        tenant_id TEXT,
        at TEXT NOT NULL,
        channel TEXT NOT NULL,
        user_name TEXT,
        address TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX access_attempts_by_tenant ON access_attempts (tenant_id, at);
    "#,
    // 20: the second factor. A user's TOTP secret (base32) once enrolled, the one being set up,
    // the last step used (a code works once), recovery codes as hashes, and when a dashboard
    // session last passed the second factor (critical actions want it fresh).
    r#"
    ALTER TABLE users ADD COLUMN totp_secret TEXT;
    ALTER TABLE users ADD COLUMN totp_pending TEXT;
    ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
    ALTER TABLE users ADD COLUMN totp_enabled_at TEXT;
    CREATE TABLE recovery_codes (
        tenant_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        hash TEXT NOT NULL,
        used_at TEXT,
        PRIMARY KEY (tenant_id, user_name, hash)
    ) WITHOUT ROWID;
    ALTER TABLE sessions ADD COLUMN second_factor_at TEXT;
    "#,
    // 21: tokens marked for critical actions. The first admin's tokens are the operator's
    // (made by `greenlight tenant create`) and are marked; every other token is not.
    r#"
    ALTER TABLE tokens ADD COLUMN critical INTEGER NOT NULL DEFAULT 0;
    UPDATE tokens SET critical = 1 WHERE user_name = 'admin';
    "#,
];

/// The schema version this host writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`VERSION`], one transaction per step.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > VERSION {
        return Err(StoreError::TooNew { found: current, supported: VERSION });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures;
    use crate::domain::order::{Order, OrderStatus, Rejection};
    use crate::domain::plan::{Approvers, Quorum, Stage, StageState};
    use chrono::{DateTime, TimeZone, Utc};

    type Columns = (Option<String>, Option<String>, Option<i64>, Option<String>, Option<String>, Option<String>);

    /// Orders stored before migration 11 get the same report columns the writer gives them.
    #[test]
    fn the_report_columns_of_old_rows_are_what_the_writer_writes() {
        let mut old = Connection::open_in_memory().expect("db");
        for sql in &MIGRATIONS[..10] {
            old.execute_batch(sql).expect("migration");
        }
        old.pragma_update(None, "user_version", 10).expect("version");
        old.execute("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', 'now')", []).expect("tenant");
        let at = |s: i64, micros: u32| Utc.timestamp_opt(1_780_000_000 + s, micros * 1000).unwrap();
        let mut orders = Vec::new();
        let mut base =
            Order::new_draft("a".into(), "alice".into(), fixtures::input(vec![fixtures::line(1, 5)]), 5, at(0, 0));
        base.submitted_at = Some(at(10, 900_000));
        base.updated_at = at(40, 0);
        let mut approved = base.clone();
        (approved.status, approved.approved_at) = (OrderStatus::Approved, Some(at(21, 100_000)));
        approved.input.customer_id = Some("C-1".into());
        orders.push(approved);
        let stage = |key: &str, state, due: Option<DateTime<Utc>>| Stage {
            key: key.into(),
            title: key.into(),
            level: 1,
            approvers: Approvers::Users { users: vec!["bob".into()] },
            quorum: Quorum::Any,
            due_in_hours: None,
            escalate_to: None,
            due_at: due,
            reason: "r".into(),
            source: format!("rule-{key}"),
            state,
            decisions: Vec::new(),
            opened_in: None,
        };
        let mut rejected = base.clone();
        rejected.id = "r".into();
        rejected.status = OrderStatus::Rejected;
        rejected.plan.stages = vec![stage("x", StageState::Approved, None), stage("y", StageState::Rejected, None)];
        rejected.rejection = Some(Rejection { by: "bob".into(), reason: "no".into(), stage: Some("y".into()) });
        orders.push(rejected);
        let mut by_step = base.clone();
        by_step.id = "s".into();
        by_step.status = OrderStatus::Rejected;
        by_step.rejection = Some(Rejection { by: "step:vendor".into(), reason: "no".into(), stage: None });
        orders.push(by_step);
        let mut pending = base.clone();
        pending.id = "p".into();
        pending.status = OrderStatus::PendingApproval;
        pending.plan.stages = vec![
            stage("x", StageState::Open, Some(at(3600, 250_000))),
            stage("y", StageState::Escalated, Some(at(1800, 0))),
            stage("z", StageState::Waiting, Some(at(60, 0))),
        ];
        orders.push(pending);
        let mut draft = base.clone();
        (draft.id, draft.submitted_at) = ("d".into(), None);
        orders.push(draft);
        for o in &orders {
            old.execute(
                "INSERT INTO orders (id, tenant_id, requester, status, currency, total_minor, version, doc)
                 VALUES (?1, 't', 'alice', ?2, 'EUR', 5, 1, ?3)",
                rusqlite::params![o.id, o.status.as_str(), serde_json::to_string(o).expect("serializes")],
            )
            .expect("old row");
        }
        migrate(&mut old).expect("migrates");
        let ts = |t: Option<DateTime<Utc>>| t.map(crate::domain::audit::timestamp);
        for o in &orders {
            let row: Columns = old
                .query_row(
                    "SELECT submitted_at, decided_at, approval_seconds, rejected_by, due_at, customer_id FROM orders WHERE id = ?1",
                    [&o.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .expect("row");
            let want = (
                ts(o.submitted_at),
                ts(o.decided_at()),
                o.approval_seconds(),
                o.rejecting_rule().map(String::from),
                ts(o.next_due_at()),
                o.input.customer_id.clone(),
            );
            assert_eq!(row, want, "order {}", o.id);
        }
        assert_eq!(orders[0].approval_seconds(), Some(10), "10.2 s count as 10");
        assert_eq!(orders[3].next_due_at(), Some(at(1800, 0)), "the waiting stage is not due yet");
    }
}
