//! When each tenant's pending orders were last checked for policy drift, and under which rules.

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

/// The rules' hash and the time of the tenant's last drift check, if it had one.
pub fn last_check(conn: &Connection, tenant_id: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT policy_hash, checked_at FROM drift_checks WHERE tenant_id = ?1")?
        .query_row([tenant_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Records a finished check.
pub fn record_check(conn: &Connection, tenant_id: &str, policy_hash: &str, at: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO drift_checks (tenant_id, policy_hash, checked_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant_id) DO UPDATE SET policy_hash = excluded.policy_hash, checked_at = excluded.checked_at",
    )?
    .execute(params![tenant_id, policy_hash, at])?;
    Ok(())
}
