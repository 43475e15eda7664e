//! Persistence of the audit chain: append inside the change's transaction, read an order's
//! trail, export, and verify by streaming the chain through the domain's verifier.

use super::{StoreError, from_json, to_json};
use crate::domain::audit::{AuditEntry, Verifier, VerifyReport, entry_digest_raw};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

/// Appends one entry to the tenant's chain. Must run inside the change's transaction (the
/// store's writer guarantees it), so the entry commits with the change or not at all.
pub fn append(
    conn: &Connection,
    tenant_id: &str,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    order_id: Option<&str>,
    data: serde_json::Value,
) -> Result<AuditEntry, StoreError> {
    let head: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_log WHERE tenant_id = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row([tenant_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let entry =
        AuditEntry::next(head.as_ref().map(|(s, h)| (*s as u64, h.as_str())), at, actor, action, order_id, data);
    conn.prepare_cached(
        "INSERT INTO audit_log (tenant_id, seq, at, actor, action, order_id, data, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        tenant_id,
        entry.seq as i64,
        entry.at,
        entry.actor,
        entry.action,
        entry.order_id,
        to_json(&entry.data)?,
        entry.prev_hash,
        entry.hash
    ])?;
    Ok(entry)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

type Row = (i64, String, String, String, Option<String>, String, String, String);

fn decode(r: Row) -> Result<AuditEntry, StoreError> {
    let (seq, at, actor, action, order_id, data, prev_hash, hash) = r;
    Ok(AuditEntry {
        seq: seq as u64,
        at,
        actor,
        action,
        order_id,
        data: from_json("audit_log.data", &data)?,
        prev_hash,
        hash,
    })
}

const COLUMNS: &str = "seq, at, actor, action, order_id, data, prev_hash, hash";

/// An order's entries, oldest first.
pub fn for_order(conn: &Connection, tenant_id: &str, order_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE tenant_id = ?1 AND order_id = ?2 ORDER BY seq"
    ))?;
    let rows = stmt.query_map(params![tenant_id, order_id], row)?;
    rows.map(|r| decode(r?)).collect()
}

/// Up to `limit` entries after `after_seq`, in order.
pub fn page(conn: &Connection, tenant_id: &str, after_seq: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))?;
    // Sequence numbers are SQLite integers; nothing comes after the largest one.
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![tenant_id, after, i64::try_from(limit).unwrap_or(i64::MAX)], row)?;
    rows.map(|r| decode(r?)).collect()
}

/// The entries the drift report lists, in `[from, to)`, oldest first, at most `limit`: drift
/// found and cleared, revoked approvals, releases by a person rather than the ERP, decisions by
/// escalation targets. Read through their partial index (migration 16), whose condition this
/// repeats.
pub fn overrides(
    conn: &Connection,
    tenant_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    // Compared as the writer formats times, so the bounds sort like the stored entries.
    let (from, to) = (crate::domain::audit::timestamp(from), crate::domain::audit::timestamp(to));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log INDEXED BY audit_overrides
          WHERE tenant_id = ?1 AND at >= ?2 AND at < ?3
            AND (action IN ('policy_drift', 'policy_drift_cleared', 'approval_revoked')
             OR (action = 'order_released' AND actor <> 'greenlight:release')
             OR (action = 'decision_recorded' AND json_extract(data, '$.escalation_target') = 1))
          ORDER BY at, seq LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![tenant_id, from, to, i64::try_from(limit).unwrap_or(i64::MAX)], row)?;
    rows.map(|r| decode(r?)).collect()
}

/// A text column of a row, borrowed; `None` when it is not text.
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Option<&'r str> {
    r.get_ref(i).ok().and_then(|v| v.as_str().ok())
}

/// Verifies the tenant's whole chain, streaming it. A row whose data is not valid JSON, or is
/// not the exact text that was hashed, counts as a changed entry.
pub fn verify(conn: &Connection, tenant_id: &str) -> Result<VerifyReport, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM audit_log WHERE tenant_id = ?1 ORDER BY seq"))?;
    let mut rows = stmt.query([tenant_id])?;
    let mut v = Verifier::default();
    // Borrowed straight from SQLite's row buffer, and `data` hashed as the stored text: no
    // allocation or JSON round trip per entry. A column that is not text is a changed entry.
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let (prev_hash, hash) = (text(r, 6).unwrap_or(""), text(r, 7).unwrap_or(""));
        v.check(seq as u64, prev_hash, hash, || {
            let order_id = match r.get_ref(4) {
                Ok(rusqlite::types::ValueRef::Null) => Ok(None),
                Ok(other) => other.as_str().map(Some).map_err(|_| ()),
                Err(_) => Err(()),
            };
            let (Some(at), Some(actor), Some(action), Ok(order_id), Some(data)) =
                (text(r, 1), text(r, 2), text(r, 3), order_id, text(r, 5))
            else {
                return false;
            };
            // The raw value leaves out whitespace around the document; stored text with any is
            // not what was hashed either.
            let Ok(raw) = serde_json::from_str::<&serde_json::value::RawValue>(data) else { return false };
            if raw.get().len() != data.len() {
                return false;
            }
            let data = raw;
            let digest = entry_digest_raw(prev_hash, seq as u64, at, actor, action, order_id, data);
            let mut hex = [0u8; 64];
            hex::encode_to_slice(digest, &mut hex).is_ok() && hex.as_slice() == hash.as_bytes()
        });
    }
    Ok(v.finish())
}
