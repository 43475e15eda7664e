//! The summary report. Outcomes and approval times are one pass over the covering index
//! `orders_decided` (the orders decided in the period, in index order), aggregated here: counts,
//! the mean, and nearest-rank percentiles ([`crate::domain::report::nearest_rank`]) by selection,
//! which costs a fraction of a window function sorting each group in SQL. The snapshot counts
//! read `orders_open` (only undecided orders are in it) and escalations `audit_escalations`
//! (migration 11). `INDEXED BY` makes a query that could not use its index fail instead of
//! scanning the table; no query reads an order's document.

use super::StoreError;
use crate::domain::audit::timestamp;
use crate::domain::report::{Figures, Group, GroupBy, Summary, SummaryQuery, nearest_rank};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use std::collections::{BTreeMap, HashSet};

/// The column an order's rows group by, for figures counted at `time` (a column of `orders`,
/// or of the audit entry for escalations).
fn key(group_by: Option<GroupBy>, time: &str, orders: &str) -> String {
    match group_by {
        None => "NULL".into(),
        Some(GroupBy::Month) => format!("substr({time}, 1, 7)"),
        Some(GroupBy::CostCenter) => format!("{orders}cost_center"),
        Some(GroupBy::Department) => format!("{orders}department"),
    }
}

type Rows = BTreeMap<Option<String>, Figures>;

/// Approval times of one group, for its mean and percentiles.
#[derive(Default)]
struct Times(Vec<i64>);

impl Times {
    /// Sets the mean (rounded) and the nearest-rank median and 90th percentile.
    fn into_figures(mut self, f: &mut Figures) {
        let n = self.0.len() as u64;
        if n == 0 {
            return;
        }
        let sum: i128 = self.0.iter().map(|&s| i128::from(s)).sum();
        f.avg_approval_seconds = i64::try_from((sum + i128::from(n / 2)) / i128::from(n)).ok();
        for (pct, slot) in [(50, &mut f.median_approval_seconds), (90, &mut f.p90_approval_seconds)] {
            let rank = nearest_rank(n, pct) as usize;
            *slot = Some(*self.0.select_nth_unstable(rank - 1).1);
        }
    }
}

/// Outcomes and approval times: one pass over the orders decided in the period, in the order of
/// the index, aggregated here (a window function sorting every partition in SQL costs several
/// times more).
fn outcomes(
    conn: &Connection,
    tenant: &str,
    q: &SummaryQuery,
    rows: &mut Rows,
    total: &mut Times,
) -> Result<(), StoreError> {
    let compliance: HashSet<String> = conn
        .prepare_cached("SELECT name FROM tenant_extensions WHERE tenant_id = ?1 AND compliance = 1")?
        .query_map([tenant], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let group = match q.group_by {
        None => "NULL",
        Some(GroupBy::Month) => "substr(decided_at, 1, 7)",
        Some(GroupBy::CostCenter) => "cost_center",
        Some(GroupBy::Department) => "department",
    };
    let sql = format!(
        "SELECT {group}, status, approval_seconds, rejected_by FROM orders INDEXED BY orders_decided
          WHERE tenant_id = ?1 AND decided_at IS NOT NULL AND decided_at >= ?2 AND decided_at < ?3
            AND (?4 = 0 OR customer_id IS NOT NULL)"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut it = stmt.query(params![tenant, timestamp(q.from), timestamp(q.to), q.customer_orders])?;
    let mut times: BTreeMap<Option<String>, Times> = BTreeMap::new();
    let (mut last_key, mut last): (Option<String>, Option<(Figures, Times)>) = (None, None);
    let mut flush = |key: Option<String>, (f, t): (Figures, Times), rows: &mut Rows| {
        let g = rows.entry(key.clone()).or_default();
        g.approved += f.approved;
        g.rejected += f.rejected;
        g.rejected_compliance += f.rejected_compliance;
        g.withdrawn += f.withdrawn;
        times.entry(key).or_default().0.extend(t.0);
    };
    while let Some(r) = it.next()? {
        let key: Option<String> = r.get(0)?;
        if last.is_some() && key != last_key {
            flush(last_key.take(), last.take().unwrap_or_default(), rows);
        }
        last_key = key;
        let (f, t) = last.get_or_insert_with(Default::default);
        match r.get_ref(1)?.as_str().map_err(|e| StoreError::Corrupt(format!("orders.status: {e}")))? {
            "approved" | "released" => {
                f.approved += 1;
                if let Some(s) = r.get::<_, Option<i64>>(2)? {
                    t.0.push(s);
                    total.0.push(s);
                }
            }
            "rejected" => {
                f.rejected += 1;
                let rule = r.get_ref(3)?.as_str_or_null();
                if rule
                    .map_err(|e| StoreError::Corrupt(format!("orders.rejected_by: {e}")))?
                    .is_some_and(|rule| compliance.contains(rule))
                {
                    f.rejected_compliance += 1;
                }
            }
            "withdrawn" => f.withdrawn += 1,
            _ => {}
        }
    }
    if let Some(l) = last {
        flush(last_key, l, rows);
    }
    for (key, t) in times {
        t.into_figures(rows.entry(key).or_default());
    }
    Ok(())
}

fn snapshot(
    conn: &Connection,
    tenant: &str,
    q: &SummaryQuery,
    now: DateTime<Utc>,
    rows: &mut Rows,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT {k}, sum(status = 'on_hold'), sum(status = 'pending_approval'),
                sum(status = 'pending_approval' AND due_at IS NOT NULL AND due_at <= ?5)
           FROM orders INDEXED BY orders_open
          WHERE tenant_id = ?1 AND status IN ('on_hold', 'pending_approval')
            AND submitted_at >= ?2 AND submitted_at < ?3 AND (?4 = 0 OR customer_id IS NOT NULL)
          GROUP BY 1",
        k = key(q.group_by, "submitted_at", "")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut it = stmt.query(params![tenant, timestamp(q.from), timestamp(q.to), q.customer_orders, timestamp(now)])?;
    while let Some(r) = it.next()? {
        let f = rows.entry(r.get(0)?).or_default();
        f.on_hold = r.get::<_, i64>(1)? as u64;
        f.open_now = r.get::<_, i64>(2)? as u64;
        f.overdue_now = r.get::<_, i64>(3)? as u64;
    }
    Ok(())
}

fn escalations(conn: &Connection, tenant: &str, q: &SummaryQuery, rows: &mut Rows) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT {k}, count(*) FROM audit_log a INDEXED BY audit_escalations
           JOIN orders o ON o.id = a.order_id
          WHERE a.tenant_id = ?1 AND a.action = 'stage_escalated' AND a.at >= ?2 AND a.at < ?3
            AND (?4 = 0 OR o.customer_id IS NOT NULL)
          GROUP BY 1",
        k = key(q.group_by, "a.at", "o.")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut it = stmt.query(params![tenant, timestamp(q.from), timestamp(q.to), q.customer_orders])?;
    while let Some(r) = it.next()? {
        rows.entry(r.get(0)?).or_default().escalations = r.get::<_, i64>(1)? as u64;
    }
    Ok(())
}

/// The summary of one tenant's orders. Counts of the groups add up to the totals; the
/// approval-time figures of the total are over all approvals, not combined from the groups.
pub fn summary(conn: &Connection, tenant: &str, q: &SummaryQuery, now: DateTime<Utc>) -> Result<Summary, StoreError> {
    let mut rows = Rows::new();
    let mut all_times = Times::default();
    outcomes(conn, tenant, q, &mut rows, &mut all_times)?;
    snapshot(conn, tenant, q, now, &mut rows)?;
    escalations(conn, tenant, q, &mut rows)?;
    let mut total = Figures::default();
    for f in rows.values() {
        total.approved += f.approved;
        total.rejected += f.rejected;
        total.rejected_compliance += f.rejected_compliance;
        total.withdrawn += f.withdrawn;
        total.on_hold += f.on_hold;
        total.open_now += f.open_now;
        total.overdue_now += f.overdue_now;
        total.escalations += f.escalations;
    }
    all_times.into_figures(&mut total);
    let groups = match q.group_by {
        None => Vec::new(),
        Some(_) => rows.into_iter().map(|(key, figures)| Group { key, figures }).collect(),
    };
    Ok(Summary { from: q.from, to: q.to, group_by: q.group_by, customer_orders: q.customer_orders, total, groups })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::Role;
    use crate::domain::fixtures;
    use crate::domain::order::{Order, OrderStatus, Rejection};
    use crate::domain::plan::{Approvers, Quorum, Stage, StageState};
    use crate::store::{Store, StoreOptions, audit, directory, orders};
    use chrono::TimeDelta;

    fn at(s: &str) -> DateTime<Utc> {
        crate::domain::report::parse_bound(s).expect("a time")
    }

    fn stage(key: &str, source: &str, state: StageState, due: Option<&str>) -> Stage {
        Stage {
            key: key.into(),
            title: key.into(),
            level: 1,
            approvers: Approvers::Role { role: Role::admin() },
            quorum: Quorum::Any,
            due_in_hours: None,
            escalate_to: None,
            due_at: due.map(at),
            reason: "r".into(),
            source: source.into(),
            state,
            decisions: Vec::new(),
            opened_in: None,
        }
    }

    /// An order of cost center `cc` submitted at `submitted`, in `status` since `decided`.
    fn order(id: &str, cc: &str, status: OrderStatus, submitted: &str, decided: &str) -> Order {
        let mut input = fixtures::input(vec![fixtures::line(1, 5)]);
        input.cost_center = Some(cc.into());
        let mut o = Order::new_draft(id.into(), "alice".into(), input, 5, at(submitted));
        o.status = status;
        o.submitted_at = Some(at(submitted));
        o.updated_at = at(decided);
        if matches!(status, OrderStatus::Approved | OrderStatus::Released) {
            o.approved_at = Some(at(decided));
        }
        o
    }

    fn rejected(id: &str, cc: &str, decided: &str, by: &str, stage_key: Option<&str>) -> Order {
        let mut o = order(id, cc, OrderStatus::Rejected, "2026-03-01T00:00:00Z", decided);
        o.plan.stages = vec![stage("vendor", "vendor-check", StageState::Rejected, None)];
        o.rejection = Some(Rejection { by: by.into(), reason: "no".into(), stage: stage_key.map(String::from) });
        o
    }

    #[test]
    fn the_summary_counts_what_the_report_module_defines() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Store::open(dir.path().join("r.db"), StoreOptions::default()).expect("opens");
        let (t, other) = s
            .write_blocking(|c| {
                Ok::<_, StoreError>((
                    directory::create_tenant(c, "acme")?.id,
                    directory::create_tenant(c, "globex")?.id,
                ))
            })
            .expect("tenants");
        let mut all = Vec::new();
        // Approvals taking 10, 20, ..., 100 seconds: 4 in March on CC-1, 6 in April on CC-2.
        for i in 1..=10i64 {
            let (cc, month) = if i <= 4 { ("CC-1", "03") } else { ("CC-2", "04") };
            let sub = at(&format!("2026-{month}-10T00:00:00Z"));
            let mut o = order(&format!("a{i}"), cc, OrderStatus::Approved, "2026-01-01", "2026-01-01");
            o.submitted_at = Some(sub);
            o.approved_at = Some(sub + TimeDelta::seconds(10 * i));
            all.push(o);
        }
        all[9].status = OrderStatus::Released;
        // A step that is a compliance rule rejected; an approver rejected a stage such a rule
        // added; an approver rejected a stage of another rule.
        all.push(rejected("r1", "CC-1", "2026-03-05T00:00:00Z", "step:vendor-check", None));
        all.push(rejected("r2", "CC-1", "2026-03-06T00:00:00Z", "dave", Some("vendor")));
        let mut r3 = rejected("r3", "CC-2", "2026-04-07T00:00:00Z", "dave", Some("vendor"));
        r3.plan.stages[0].source = "budget".into();
        all.push(r3);
        all.push(order("w1", "CC-2", OrderStatus::Withdrawn, "2026-04-01", "2026-04-02"));
        all.push(order("h1", "CC-1", OrderStatus::OnHold, "2026-03-20", "2026-03-20"));
        let mut late = order("p1", "CC-1", OrderStatus::PendingApproval, "2026-03-21", "2026-03-21");
        late.plan.stages = vec![stage("s", "budget", StageState::Escalated, Some("2026-03-22T00:00:00Z"))];
        all.push(late);
        let mut fresh = order("p2", "CC-2", OrderStatus::PendingApproval, "2026-04-21", "2026-04-21");
        fresh.plan.stages = vec![stage("s", "budget", StageState::Open, Some("2026-12-31T00:00:00Z"))];
        all.push(fresh);
        // Outside the period, and another tenant's: never counted.
        all.push(order("old", "CC-1", OrderStatus::Approved, "2025-01-01", "2025-01-02"));
        let theirs = order("theirs", "CC-1", OrderStatus::Approved, "2026-03-01", "2026-03-02");
        let (t2, o2) = (t.clone(), other.clone());
        s.write_blocking(move |c| -> Result<(), StoreError> {
            for o in &all {
                orders::insert(c, &t2, o)?;
            }
            orders::insert(c, &o2, &theirs)?;
            let data = serde_json::json!({});
            audit::append(c, &t2, at("2026-03-23T00:00:00Z"), "host", "stage_escalated", Some("p1"), data.clone())?;
            audit::append(c, &o2, at("2026-03-23T00:00:00Z"), "host", "stage_escalated", Some("theirs"), data)?;
            c.execute(
                "INSERT INTO tenant_extensions (tenant_id, name, compliance) VALUES (?1, 'vendor-check', 1), (?1, 'budget', 0)",
                [&t2],
            )?;
            Ok(())
        })
        .expect("written");

        let now = at("2026-06-01T00:00:00Z");
        let q = |group_by| {
            SummaryQuery::new(Some(at("2026-02-01")), Some(at("2026-05-01")), group_by, false, now).expect("a period")
        };
        let total = s.read_blocking(|c| summary(c, &t, &q(None), now)).expect("summary");
        let f = &total.total;
        assert_eq!((f.approved, f.rejected, f.rejected_compliance, f.withdrawn), (10, 3, 2, 1));
        assert_eq!((f.on_hold, f.open_now, f.overdue_now, f.escalations), (1, 2, 1, 1));
        assert_eq!(
            (f.avg_approval_seconds, f.median_approval_seconds, f.p90_approval_seconds),
            (Some(55), Some(50), Some(90))
        );
        assert!(total.groups.is_empty());

        let by_cc = s.read_blocking(|c| summary(c, &t, &q(Some(GroupBy::CostCenter)), now)).expect("summary");
        assert_eq!(by_cc.total, total.total, "groups add up to the totals; percentiles are over all approvals");
        let keys: Vec<_> = by_cc.groups.iter().map(|g| g.key.clone().unwrap_or_default()).collect();
        assert_eq!(keys, ["CC-1", "CC-2"]);
        let (cc1, cc2) = (&by_cc.groups[0].figures, &by_cc.groups[1].figures);
        assert_eq!(
            (cc1.approved, cc1.rejected_compliance, cc1.median_approval_seconds, cc1.escalations),
            (4, 2, Some(20), 1)
        );
        assert_eq!(
            (cc2.approved, cc2.rejected, cc2.rejected_compliance, cc2.p90_approval_seconds),
            (6, 1, 0, Some(100))
        );

        let by_month = s.read_blocking(|c| summary(c, &t, &q(Some(GroupBy::Month)), now)).expect("summary");
        let months: Vec<_> =
            by_month.groups.iter().map(|g| (g.key.clone().unwrap_or_default(), g.figures.approved)).collect();
        assert_eq!(months, [("2026-03".to_string(), 4), ("2026-04".to_string(), 6)]);

        let customers = SummaryQuery { customer_orders: true, ..q(None) };
        let none = s.read_blocking(|c| summary(c, &t, &customers, now)).expect("summary");
        assert_eq!(none.total, Figures::default(), "no order here names a customer");
    }
}
