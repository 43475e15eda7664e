//! The transactional outbox: notifications are rows written in the same transaction as the
//! change that caused them, so none is lost and none announces a change that did not commit.
//! Delivery (channels, retries, dead letters) reads from here.

use super::{StoreError, to_json};
use crate::domain::delivery::{OutboxEvent, TenantNotice};
use rusqlite::{Connection, params};

/// Queues one notification of an order's event.
pub fn enqueue(conn: &Connection, tenant_id: &str, event: &OutboxEvent, at: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("INSERT INTO outbox (tenant_id, order_id, event, payload, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)")?.execute(params![tenant_id, event.order_id, event.details.action(), to_json(event)?, at],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Queues a notice to the tenant's admins (a row without an order).
pub fn enqueue_notice(conn: &Connection, tenant_id: &str, notice: &TenantNotice, at: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO outbox (tenant_id, order_id, event, payload, created_at, next_attempt_at) VALUES (?1, NULL, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![tenant_id, notice.event(), to_json(notice)?, at])?;
    Ok(conn.last_insert_rowid())
}

/// Pending notifications of one order (for tests and the admin view).
pub fn for_order(conn: &Connection, tenant_id: &str, order_id: &str) -> Result<Vec<(String, OutboxEvent)>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT event, payload FROM outbox WHERE tenant_id = ?1 AND order_id = ?2 ORDER BY id")?;
    let rows =
        stmt.query_map(params![tenant_id, order_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    rows.map(|r| {
        let (e, p) = r?;
        Ok((e, super::from_json("outbox.payload", &p)?))
    })
    .collect()
}
