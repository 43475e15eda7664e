//! Orders: the full order document plus indexed columns for filters, the open-stage index that
//! makes the inbox a lookup, budget sums, and the record of every evaluation.

use super::{StoreError, from_json, to_json};
use crate::domain::audit::timestamp;
use crate::domain::money::{Minor, within_bounds};
use crate::domain::order::{Order, OrderStatus, id_floor};
use crate::domain::plan::{Approvers, StageState};
use crate::domain::step::OrderContext;
use crate::engine::StepRun;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

/// Filters of `GET /v1/orders`.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// Only this status.
    pub status: Option<OrderStatus>,
    /// Only this cost center.
    pub cost_center: Option<String>,
    /// Only this department.
    pub department: Option<String>,
    /// Only orders with a line in this budget category.
    pub budget_category: Option<String>,
    /// Only this requester's orders.
    pub requester: Option<String>,
    /// Page size, 1 to 200.
    pub limit: usize,
    /// Continue after this order id (newest first).
    pub cursor: Option<String>,
    /// Only orders created at or after this time.
    pub created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only orders created before this time.
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

fn category_rows(conn: &Connection, tenant_id: &str, order: &Order) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM order_categories WHERE order_id = ?1")?.execute([&order.id])?;
    let mut cats: Vec<&str> = order.input.lines.iter().filter_map(|l| l.budget_category.as_deref()).collect();
    cats.sort_unstable();
    cats.dedup();
    let mut ins_cat =
        conn.prepare_cached("INSERT INTO order_categories (tenant_id, category, order_id) VALUES (?1, ?2, ?3)")?;
    for c in cats {
        ins_cat.execute(params![tenant_id, c, order.id])?;
    }
    Ok(())
}

fn open_stage_rows(conn: &Connection, tenant_id: &str, order: &Order) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM open_stages WHERE order_id = ?1")?.execute([&order.id])?;
    if order.status == OrderStatus::PendingApproval {
        let mut ins = conn.prepare_cached(
            "INSERT OR IGNORE INTO open_stages (tenant_id, order_id, stage, approver_kind, approver, due_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for s in order.plan.open_stages() {
            // Only a stage that can still escalate carries its due time into the index.
            let due = if s.state == StageState::Open { s.due_at.map(timestamp) } else { None };
            let mut who = vec![&s.approvers];
            let target = s.escalation_target();
            if s.state == StageState::Escalated {
                who.push(&target);
            }
            for approvers in who {
                match approvers {
                    Approvers::Role { role } => {
                        ins.execute(params![tenant_id, order.id, s.key, "role", role.as_str(), due])?;
                    }
                    Approvers::Users { users } => {
                        for u in users {
                            ins.execute(params![tenant_id, order.id, s.key, "user", u, due])?;
                        }
                    }
                    Approvers::CostCenterManager { manager, .. } => {
                        ins.execute(params![tenant_id, order.id, s.key, "user", manager, due])?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The columns the store derives from an order document, with their values: what filters,
/// reports and indexes read. `insert` writes them all, `update` the ones that changed.
fn derived_columns(order: &Order) -> [(&'static str, Value); 12] {
    let text = |v: Option<String>| v.map_or(Value::Null, Value::Text);
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    [
        ("status", Value::Text(order.status.as_str().into())),
        ("cost_center", text(order.input.cost_center.clone())),
        ("department", text(order.input.department.clone())),
        ("currency", Value::Text(order.input.currency.as_str().into())),
        ("total_minor", Value::Integer(order.total_minor())),
        ("approved_at", text(order.approved_at.map(timestamp))),
        ("submitted_at", text(order.submitted_at.map(timestamp))),
        ("decided_at", text(order.decided_at().map(timestamp))),
        ("approval_seconds", int(order.approval_seconds())),
        ("rejected_by", text(order.rejecting_rule().map(str::to_string))),
        ("due_at", text(order.next_due_at().map(timestamp))),
        ("customer_id", text(order.input.customer_id.clone())),
    ]
}

/// Inserts a new order.
pub fn insert(conn: &Connection, tenant_id: &str, order: &Order) -> Result<(), StoreError> {
    let columns = derived_columns(order);
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let places: Vec<String> = (6..6 + columns.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO orders (id, tenant_id, requester, version, doc, {}) VALUES (?1, ?2, ?3, ?4, ?5, {})",
        names.join(", "),
        places.join(", ")
    );
    let mut values = vec![
        Value::Text(order.id.clone()),
        Value::Text(tenant_id.into()),
        Value::Text(order.requester.clone()),
        Value::Integer(order.version as i64),
        Value::Text(to_json(order)?),
    ];
    values.extend(columns.into_iter().map(|(_, v)| v));
    conn.prepare_cached(&sql)?.execute(params_from_iter(values.iter()))?;
    category_rows(conn, tenant_id, order)?;
    open_stage_rows(conn, tenant_id, order)
}

/// Saves a changed order if its stored version is still `before`'s. Returns false when someone
/// else changed it first (the caller answers 409). Only the columns whose values changed are
/// set, so SQLite rewrites only the indexes over them; the category and open-stage rows are
/// rewritten only when the lines, or the status and plan, changed.
pub fn update(conn: &Connection, tenant_id: &str, before: &Order, order: &Order) -> Result<bool, StoreError> {
    let mut sql = String::from("UPDATE orders SET version = ?1, doc = ?2");
    let mut values: Vec<Value> = vec![Value::Integer(order.version as i64), Value::Text(to_json(order)?)];
    for ((name, old), (_, new)) in derived_columns(before).into_iter().zip(derived_columns(order)) {
        if old != new {
            values.push(new);
            sql.push_str(&format!(", {name} = ?{}", values.len()));
        }
    }
    values.extend([
        Value::Text(order.id.clone()),
        Value::Text(tenant_id.into()),
        Value::Integer(before.version as i64),
    ]);
    let n = values.len();
    sql.push_str(&format!(" WHERE id = ?{} AND tenant_id = ?{} AND version = ?{n}", n - 2, n - 1));
    // A handful of distinct statements in practice (which columns a transition changes), each
    // kept prepared.
    let changed = conn.prepare_cached(&sql)?.execute(params_from_iter(values.iter()))? == 1;
    if changed {
        if before.input.lines != order.input.lines {
            category_rows(conn, tenant_id, order)?;
        }
        if before.status != order.status || before.plan != order.plan {
            open_stage_rows(conn, tenant_id, order)?;
        }
    }
    Ok(changed)
}

/// Loads an order of this tenant; another tenant's order is simply not found.
pub fn load(conn: &Connection, tenant_id: &str, id: &str) -> Result<Option<Order>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM orders WHERE id = ?1 AND tenant_id = ?2")?
        .query_row(params![id, tenant_id], |r| r.get(0))
        .optional()?;
    doc.map(|d| from_json("orders.doc", &d)).transpose()
}

/// The `WHERE` clause of a filter (without the cursor) and its arguments.
fn filter_sql(tenant_id: &str, f: &OrderFilter) -> (String, Vec<String>) {
    let mut sql = String::from(" WHERE o.tenant_id = ?");
    let mut args: Vec<String> = vec![tenant_id.to_string()];
    if let Some(s) = f.status {
        sql.push_str(" AND o.status = ?");
        args.push(s.as_str().to_string());
    }
    if let Some(v) = &f.cost_center {
        sql.push_str(" AND o.cost_center = ?");
        args.push(v.clone());
    }
    if let Some(v) = &f.department {
        sql.push_str(" AND o.department = ?");
        args.push(v.clone());
    }
    if let Some(v) = &f.requester {
        sql.push_str(" AND o.requester = ?");
        args.push(v.clone());
    }
    if let Some(v) = &f.budget_category {
        sql.push_str(" AND o.id IN (SELECT order_id FROM order_categories WHERE tenant_id = ? AND category = ?)");
        args.push(tenant_id.to_string());
        args.push(v.clone());
    }
    // Ids are UUID v7: their text order is their creation order, so a date range is an id range.
    if let Some(t) = f.created_from {
        sql.push_str(" AND o.id >= ?");
        args.push(id_floor(t));
    }
    if let Some(t) = f.created_before {
        sql.push_str(" AND o.id < ?");
        args.push(id_floor(t));
    }
    (sql, args)
}

/// One page of orders, newest first, and the cursor of the next page.
pub fn list(conn: &Connection, tenant_id: &str, f: &OrderFilter) -> Result<(Vec<Order>, Option<String>), StoreError> {
    let (filter, mut args) = filter_sql(tenant_id, f);
    let mut sql = format!("SELECT o.doc FROM orders o{filter}");
    if let Some(c) = &f.cursor {
        sql.push_str(" AND o.id < ?");
        args.push(c.clone());
    }
    let limit = f.limit.clamp(1, 200);
    sql.push_str(&format!(" ORDER BY o.id DESC LIMIT {}", limit + 1));
    // Few filter combinations exist, so the statement cache serves the request view well.
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))?;
    let mut orders = Vec::with_capacity(limit + 1);
    for doc in rows {
        orders.push(from_json::<Order>("orders.doc", &doc?)?);
    }
    let next = if orders.len() > limit {
        orders.truncate(limit);
        orders.last().map(|o| o.id.clone())
    } else {
        None
    };
    Ok((orders, next))
}

/// How many orders match a filter, counting no further than `at_most` (the request view shows
/// "more than" beyond it rather than reading every index entry of a large tenant).
pub fn count(conn: &Connection, tenant_id: &str, f: &OrderFilter, at_most: u64) -> Result<u64, StoreError> {
    let (filter, args) = filter_sql(tenant_id, f);
    let sql = format!("SELECT count(*) FROM (SELECT 1 FROM orders o{filter} LIMIT {})", at_most.saturating_add(1));
    let n: i64 = conn.prepare_cached(&sql)?.query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    Ok(n as u64)
}

/// Pending orders with an open stage for one of these roles or this user (before the
/// per-person checks the state machine applies), oldest first, after the order id `after`.
pub fn open_for(
    conn: &Connection,
    tenant_id: &str,
    user: &str,
    roles: &[String],
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Order>, StoreError> {
    // One index range per authority (the user, each role), each cut at `limit` after the cursor:
    // the first `limit` orders of their union are among those, so a page reads at most
    // `limit` entries per authority however many orders wait (an approver role of a large
    // tenant may have a hundred thousand). Numbered from ?4: the tenant, the user and the
    // cursor come first.
    let limit = limit.clamp(1, 1000);
    let range = |who: &str| {
        format!(
            "SELECT order_id FROM (SELECT DISTINCT order_id FROM open_stages
               WHERE tenant_id = ?1 AND {who} AND order_id > ?3 ORDER BY order_id LIMIT {limit})"
        )
    };
    let mut ranges = vec![range("approver_kind = 'user' AND approver = ?2")];
    ranges.extend((0..roles.len()).map(|i| range(&format!("approver_kind = 'role' AND approver = ?{}", i + 4))));
    let sql = format!(
        "SELECT doc FROM orders WHERE tenant_id = ?1 AND id IN ({}) ORDER BY id LIMIT {limit}",
        ranges.join(" UNION ")
    );
    let mut args = vec![tenant_id.to_string(), user.to_string(), after.unwrap_or("").to_string()];
    args.extend(roles.iter().cloned());
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))?;
    rows.map(|d| from_json("orders.doc", &d?)).collect()
}

/// Orders (tenant id, order id) with an open stage due at or before `now`, oldest due first: the
/// escalator's work list (R6).
pub fn overdue(conn: &Connection, now: &str, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT tenant_id, order_id FROM open_stages WHERE due_at IS NOT NULL AND due_at <= ?1
         GROUP BY tenant_id, order_id ORDER BY MIN(due_at) LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whose budget a sum of approved orders is for.
#[derive(Debug, Clone, Copy)]
pub enum Budget<'a> {
    /// A requester's (by user name).
    Requester(&'a str),
    /// A cost center's (by code).
    CostCenter(&'a str),
}

/// Total of the approved and released orders on a budget approved since `since`, `exclude`
/// left out, or `None` when it is beyond the largest amount (possible only with orders stored
/// before amounts were bounded).
pub fn spent(
    conn: &Connection,
    tenant_id: &str,
    budget: Budget<'_>,
    since: &str,
    exclude: &str,
) -> Result<Option<Minor>, StoreError> {
    // One fixed statement per kind of budget, so the statement cache serves every evaluation.
    let (sql, key) = match budget {
        Budget::Requester(name) => (
            "SELECT SUM(total_minor) FROM orders WHERE tenant_id = ?1 AND requester = ?2
             AND status IN ('approved', 'released') AND approved_at >= ?3 AND id <> ?4",
            name,
        ),
        Budget::CostCenter(code) => (
            "SELECT SUM(total_minor) FROM orders WHERE tenant_id = ?1 AND cost_center = ?2
             AND status IN ('approved', 'released') AND approved_at >= ?3 AND id <> ?4",
            code,
        ),
    };
    sum_totals(conn, sql, [tenant_id, key, since, exclude])
}

/// Runs a `SELECT SUM(...)` of amounts. SQLite's `sum()` is exact integer arithmetic and raises
/// "integer overflow" instead of wrapping (documented behaviour); that, and a sum beyond the
/// largest amount, is `None`. The sum stays in SQLite: it runs over an index without handing
/// every row to Rust.
fn sum_totals(conn: &Connection, sql: &str, args: [&str; 4]) -> Result<Option<Minor>, StoreError> {
    match conn.prepare_cached(sql)?.query_row(args, |r| r.get::<_, Option<Minor>>(0)) {
        Ok(total) => Ok(Some(total.unwrap_or(0)).filter(|t| within_bounds(*t))),
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m == "integer overflow" => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Stores what an evaluation saw and did, for replay and explanation.
pub fn record_evaluation(
    conn: &Connection,
    tenant_id: &str,
    order_id: &str,
    at: &str,
    context: Option<&OrderContext>,
    runs: &[StepRun],
    outcome: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO evaluations (tenant_id, order_id, at, context, runs, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![tenant_id, order_id, at, to_json(&context)?, to_json(&runs)?, outcome])?;
    Ok(())
}

/// One stored evaluation of an order.
#[derive(Debug, Clone)]
pub struct StoredEvaluation {
    /// Its number among the order's evaluations, from 1, oldest first.
    pub n: usize,
    /// When it ran.
    pub at: String,
    /// What the steps saw (none when the evaluation stopped before the steps ran).
    pub context: Option<OrderContext>,
    /// The context as stored, for its hash.
    pub context_json: String,
    /// What each step did.
    pub runs: Vec<StepRun>,
    /// The outcome it led to.
    pub outcome: String,
}

/// An order's evaluations, oldest first.
pub fn evaluations(conn: &Connection, tenant_id: &str, order_id: &str) -> Result<Vec<StoredEvaluation>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, context, runs, outcome FROM evaluations WHERE tenant_id = ?1 AND order_id = ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![tenant_id, order_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
    })?;
    let mut out = Vec::new();
    for (i, row) in rows.enumerate() {
        let (at, context_json, runs, outcome) = row?;
        out.push(StoredEvaluation {
            n: i + 1,
            at,
            context: from_json("evaluations.context", &context_json)?,
            runs: from_json("evaluations.runs", &runs)?,
            context_json,
            outcome,
        });
    }
    Ok(out)
}

/// An order with the context of its latest evaluation, if it has one that decodes.
pub type WithContext = (Order, Option<OrderContext>);

/// A page of orders (as [`list`]) with the context of each one's latest evaluation, in one
/// read: what replaying rules over past orders (what-if, drift checks) starts from. A context
/// that is missing or no longer decodes is `None`.
pub fn list_with_contexts(
    conn: &Connection,
    tenant_id: &str,
    f: &OrderFilter,
) -> Result<(Vec<WithContext>, Option<String>), StoreError> {
    let (page, next) = list(conn, tenant_id, f)?;
    let mut out = Vec::with_capacity(page.len());
    for order in page {
        let ctx = latest_context(conn, tenant_id, &order.id)?.and_then(|v| serde_json::from_value(v).ok());
        out.push((order, ctx));
    }
    Ok((out, next))
}

/// The context of an order's latest evaluation: what the steps saw, connector data included.
pub fn latest_context(
    conn: &Connection,
    tenant_id: &str,
    order_id: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT context FROM evaluations WHERE tenant_id = ?1 AND order_id = ?2 ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![tenant_id, order_id], |r| r.get(0))
        .optional()?;
    text.map(|t| super::from_json("evaluations.context", &t)).transpose()
}
