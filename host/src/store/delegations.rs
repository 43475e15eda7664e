//! Delegations (R6): who lends their authority to whom, and when.

use super::StoreError;
use crate::domain::audit::timestamp;
use crate::domain::delegation::Delegation;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

/// Stores a new delegation.
pub fn insert(conn: &Connection, tenant_id: &str, d: &Delegation) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO delegations (id, tenant_id, delegator, delegate, starts_at, until, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        d.id,
        tenant_id,
        d.delegator,
        d.delegate,
        timestamp(d.from),
        timestamp(d.until),
        timestamp(d.created_at)
    ])?;
    Ok(())
}

fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("delegations.{field}: '{s}' is not an RFC 3339 time: {e}")))
}

fn from_row(r: &Row<'_>) -> Result<Result<Delegation, StoreError>, rusqlite::Error> {
    let (id, delegator, delegate): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
    let (from, until, created): (String, String, String) = (r.get(3)?, r.get(4)?, r.get(5)?);
    Ok((|| {
        Ok(Delegation {
            id,
            delegator,
            delegate,
            from: parse_time("starts_at", &from)?,
            until: parse_time("until", &until)?,
            created_at: parse_time("created_at", &created)?,
        })
    })())
}

const COLUMNS: &str = "id, delegator, delegate, starts_at, until, created_at";

/// Delegations to `delegate` in force at `at`, oldest first (the first one that covers a stage
/// is the authority a decision uses).
pub fn active_for(
    conn: &Connection,
    tenant_id: &str,
    delegate: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Delegation>, StoreError> {
    let now = timestamp(at);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM delegations WHERE tenant_id = ?1 AND delegate = ?2 AND until > ?3 AND starts_at <= ?3
         ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map(params![tenant_id, delegate, now], from_row)?;
    rows.map(|r| r?).collect()
}

/// Delegations a user gave or received that have not ended by `at`, oldest first.
pub fn current_of(
    conn: &Connection,
    tenant_id: &str,
    user: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Delegation>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM delegations WHERE tenant_id = ?1 AND (delegate = ?2 OR delegator = ?2) AND until > ?3
         ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map(params![tenant_id, user, timestamp(at)], from_row)?;
    rows.map(|r| r?).collect()
}

/// Ends a delegation the delegator gave, effective `at`. Returns false when there is no such
/// delegation of theirs still running.
pub fn end(
    conn: &Connection,
    tenant_id: &str,
    id: &str,
    delegator: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let now = timestamp(at);
    let n = conn
        .prepare_cached(
            "UPDATE delegations SET until = MAX(?4, starts_at) WHERE id = ?1 AND tenant_id = ?2 AND delegator = ?3 AND until > ?4",
        )?
        .execute(params![id, tenant_id, delegator, now])?;
    Ok(n == 1)
}
