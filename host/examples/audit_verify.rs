//! Audit verification speed: entries per second verifying a tenant's hash chain as it streams
//! from SQLite (`store::audit::verify`: read, decode, re-hash, compare), against SHA-256 over the
//! very same bytes in memory — measured in the same run.
//!
//! `cargo xtask bench` runs it (1,000,000 entries; 100,000 with `--quick`). Prints one `BENCH`
//! line of JSON that xtask collects into the table.

#![allow(clippy::float_arithmetic, missing_docs, clippy::unwrap_used)]

use greenlight_host::domain::audit::AuditEntry;
use greenlight_host::store::{Store, StoreError, StoreOptions, audit, directory};
use sha2::{Digest, Sha256};
use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: u64 = if quick { 100_000 } else { 1_000_000 };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("audit.db"), StoreOptions::default()).unwrap();
    let tenant = store.write_blocking(|c| directory::create_tenant(c, "bench").map(|t| t.id)).unwrap();

    // A chain of realistic entries, written in one transaction.
    let t = tenant.clone();
    let canonical: Vec<(String, Vec<u8>)> = store
        .write_blocking(move |c| -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            let mut ins = c.prepare(
                "INSERT INTO audit_log (tenant_id, seq, at, actor, action, order_id, data, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut prev: Option<(u64, String)> = None;
            let mut bytes = Vec::with_capacity(n as usize);
            let at = chrono::Utc::now();
            for i in 0..n {
                let data = serde_json::json!({"stage": "cost-center", "decision": "approve", "comment": "within budget", "order_total_minor": 120_000 + i});
                let order = format!("01a20480-{:04x}-7000-8000-{:012x}", i % 65_536, i);
                let e = AuditEntry::next(prev.as_ref().map(|(s, h)| (*s, h.as_str())), at, "bob", "decision_recorded", Some(&order), data);
                ins.execute(rusqlite::params![t, e.seq as i64, e.at, e.actor, e.action, e.order_id, e.data.to_string(), e.prev_hash, e.hash])?;
                // The baseline hashes exactly what the verifier hashes: prev_hash, '\n', canonical JSON.
                let canon = serde_json::json!({"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "order_id": e.order_id, "data": e.data});
                bytes.push((e.prev_hash.clone(), serde_json::to_vec(&canon).unwrap_or_default()));
                prev = Some((e.seq, e.hash));
            }
            Ok(bytes)
        })
        .unwrap();

    let t = tenant.clone();
    let start = Instant::now();
    let report = store.read_blocking(move |c| audit::verify(c, &t)).unwrap();
    let verify_s = start.elapsed().as_secs_f64();
    assert!(report.ok && report.entries == n, "{report:?}");

    let start = Instant::now();
    let mut last = [0u8; 32];
    for (prev, canon) in &canonical {
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(b"\n");
        h.update(canon);
        last = h.finalize().into();
    }
    let sha_s = start.elapsed().as_secs_f64();
    std::hint::black_box(last);

    let rate = n as f64 / verify_s;
    let baseline = n as f64 / sha_s;
    println!(
        "audit verify: {rate:.0} entries/s over {n} entries; sha256 over the same bytes in memory: {baseline:.0} entries/s"
    );
    let row = serde_json::json!({
        "row": "Audit verify",
        "what": format!("entries/s verifying a {n}-entry chain from SQLite"),
        "figure": rate.round(), "unit": "entries/s",
        "baseline": "sha256 over the same bytes in memory", "baseline_value": baseline.round(),
        "ratio": (rate / baseline * 100.0).round() / 100.0,
        "goal": ">= 500,000 entries/s", "met": rate >= 500_000.0,
    });
    println!("BENCH {row}");
}
