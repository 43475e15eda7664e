//! Durable submits per second through the real use case (`Approvals::submit`: read, evaluate,
//! commit order + audit entries + outbox rows + evaluation record with `synchronous=FULL`),
//! with group commit against one fsync per change, and raw batched SQLite inserts as the
//! ceiling — all measured in the same run on the same disk.
//!
//! `cargo xtask bench [--orders N] [--clients C]`

#![allow(clippy::float_arithmetic, missing_docs)]

use greenlight_host::approvals::{Approvals, NewUser};
use greenlight_host::domain::order::{Line, OrderInput};
use greenlight_host::runtime::Runtimes;
use greenlight_host::store::{Store, StoreOptions, WriterStats};
use std::time::Instant;

fn input(i: i64) -> OrderInput {
    OrderInput {
        cost_center: None,
        department: Some("IT".into()),
        customer_id: None,
        vendor_id: None,
        currency: "EUR".parse().expect("EUR"),
        lines: (0..5)
            .map(|l| Line {
                sku: format!("SKU-{l}"),
                description: Some("widget".into()),
                quantity: 1 + l,
                unit_price_minor: 1_000 + i,
                tax_category: None,
                budget_category: Some("hardware".into()),
            })
            .collect(),
        recurrence: None,
        attributes: Default::default(),
    }
}

/// Submits per second with `max_batch` changes per commit, and what the writer did meanwhile.
async fn submits_per_second(max_batch: usize, orders: usize, clients: usize) -> (f64, WriterStats) {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("b.db");
    // The set-up (tenant, user, drafts) always commits in groups, so that only the submits pay
    // for the mode being measured.
    let setup = Store::open(&db, StoreOptions::default()).expect("store");
    let approvals = Approvals::new(setup.clone(), Runtimes::new().expect("runtimes"));
    let (_, admin) = approvals.create_tenant("bench").await.expect("tenant");
    let admin = approvals.authenticate(&admin).await.expect("auth").expect("admin");
    let body = NewUser::with_roles("alice", vec!["requester".parse().expect("role")]);
    let (_, token) = approvals.create_user(&admin, body).await.expect("user");
    let alice = approvals.authenticate(&token).await.expect("auth").expect("alice");
    let mut ids = Vec::with_capacity(orders);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..orders {
        let (a, p) = (approvals.clone(), alice.clone());
        set.spawn(async move { a.create_order(&p, input(i as i64)).await.expect("create").id });
    }
    while let Some(id) = set.join_next().await {
        ids.push(id.expect("task"));
    }
    setup.close();
    let store = Store::open(&db, StoreOptions { max_batch, ..StoreOptions::default() }).expect("store");
    let approvals = Approvals::new(store.clone(), Runtimes::new().expect("runtimes"));
    let alice = approvals.authenticate(&token).await.expect("auth").expect("alice");
    let before = store.writer_stats();
    let start = Instant::now();
    let chunks: Vec<Vec<String>> = ids.chunks(orders.div_ceil(clients)).map(|c| c.to_vec()).collect();
    let mut set = tokio::task::JoinSet::new();
    for chunk in chunks {
        let (a, p) = (approvals.clone(), alice.clone());
        set.spawn(async move {
            for id in chunk {
                let o = a.submit(&p, &id).await.expect("submit");
                assert_eq!(o.status.as_str(), "approved");
            }
        });
    }
    while set.join_next().await.is_some() {}
    let rate = orders as f64 / start.elapsed().as_secs_f64();
    (rate, store.writer_stats().since(&before))
}

/// Raw SQLite: the same number of rows as a submit writes, all in one transaction.
fn raw_batched(orders: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tmp");
    let c = rusqlite::Connection::open(dir.path().join("raw.db")).expect("open");
    c.pragma_update(None, "journal_mode", "WAL").expect("wal");
    c.pragma_update(None, "synchronous", "FULL").expect("sync");
    c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v TEXT)").expect("table");
    let payload = "x".repeat(600);
    let start = Instant::now();
    let tx = c.unchecked_transaction().expect("tx");
    {
        let mut ins = tx.prepare("INSERT INTO t (k, v) VALUES (?1, ?2)").expect("prepare");
        for i in 0..orders {
            // order row + 2 audit entries + 2 outbox rows + evaluation record
            for r in 0..6 {
                ins.execute(rusqlite::params![format!("{i}-{r}"), payload]).expect("insert");
            }
        }
    }
    tx.commit().expect("commit");
    orders as f64 / start.elapsed().as_secs_f64()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let orders = arg("--orders", if quick { 1_000 } else { 2_000 });
    let clients = arg("--clients", 64);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // One fsync per submit is slow by design (and slower on a busy disk): fewer of them suffice.
    let (single, _) = rt.block_on(submits_per_second(1, orders.min(if quick { 150 } else { 600 }), clients));
    let (group, writer) = rt.block_on(submits_per_second(512, orders, clients));
    // The writer's share of a submit: if busy time per submit times the rate is near one, the
    // writer is the bound; well below, the work before it (reads, evaluation) is.
    let busy_us = writer.busy.as_secs_f64() * 1e6 / orders as f64;
    let per_commit = writer.changes as f64 / writer.commits.max(1) as f64;
    let raw = raw_batched(orders);
    println!("| row | figure | baseline | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| durable submits/s, group commit ({clients} clients) | {group:.0}/s | one fsync per change: {single:.0}/s | {:.1}x |",
        group / single
    );
    println!(
        "writer: {busy_us:.1} µs busy per submit ({:.0}% of the time), {per_commit:.1} changes per commit",
        busy_us * group / 1e4
    );
    println!(
        "| durable submits/s, group commit | {group:.0}/s | raw batched SQLite inserts (the ceiling): {raw:.0}/s | {:.2}x of ceiling |",
        group / raw
    );
    // One BENCH line per row for `cargo xtask bench`'s table and results.json.
    let rows = [
        serde_json::json!({
            "row": "Durable submits", "what": format!("submits/s, group commit, synchronous=FULL, {clients} clients, {orders} orders"),
            "figure": group.round(), "unit": "submits/s",
            "baseline": "one transaction and fsync per submit", "baseline_value": single.round(),
            "ratio": (group / single * 10.0).round() / 10.0,
            "goal": ">= 5,000/s and >= 20x one-fsync", "met": group >= 5_000.0 && group / single >= 20.0,
            "writer_busy_us_per_submit": (busy_us * 10.0).round() / 10.0,
            "writer_busy_share": (busy_us * group / 1e6 * 100.0).round() / 100.0,
            "changes_per_commit": (per_commit * 10.0).round() / 10.0,
        }),
        serde_json::json!({
            "row": "Durable submits vs the limit", "what": "submits/s, group commit",
            "figure": group.round(), "unit": "submits/s",
            "baseline": "raw batched SQLite inserts, same rows per submit (the limit)", "baseline_value": raw.round(),
            "ratio": (group / raw * 100.0).round() / 100.0, "goal": "-", "met": null,
        }),
    ];
    for r in rows {
        println!("BENCH {r}");
    }
}
