//! Customer authorization certificates (R4), written with the approval that issues them.

use super::{StoreError, from_json, to_json};
use crate::domain::authorization::Authorization;
use rusqlite::{Connection, params};

/// Stores a certificate.
pub fn insert(conn: &Connection, tenant_id: &str, a: &Authorization) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO authorizations (id, tenant_id, order_id, customer_id, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![a.id, tenant_id, a.order_id, a.customer_id, to_json(a)?])?;
    Ok(())
}

/// A tenant's certificates, newest first, optionally of one customer or one order.
pub fn list(
    conn: &Connection,
    tenant_id: &str,
    customer_id: Option<&str>,
    order_id: Option<&str>,
    limit: usize,
) -> Result<Vec<Authorization>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT doc FROM authorizations WHERE tenant_id = ?1 AND (?2 IS NULL OR customer_id = ?2)
         AND (?3 IS NULL OR order_id = ?3) ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![tenant_id, customer_id, order_id, limit as i64], |r| r.get::<_, String>(0))?;
    rows.map(|d| from_json("authorizations.doc", &d?)).collect()
}
