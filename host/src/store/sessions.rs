//! Passwords and browser sessions. A session is stored by the SHA-256 of its cookie value, so
//! the table never holds anything a thief could send back; passwords only as argon2id hashes.

use super::StoreError;
use super::directory::token_hash;
use crate::domain::audit::timestamp;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

/// A stored session: whose it is, its form token, and its times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Tenant id.
    pub tenant_id: String,
    /// User name.
    pub user_name: String,
    /// The token every state-changing form must carry.
    pub csrf: String,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last use.
    pub seen_at: DateTime<Utc>,
    /// When the session last passed the second factor.
    pub second_factor_at: Option<DateTime<Utc>>,
}

/// The password hash of a user of a tenant (by the tenant's name), if the user has one.
pub fn password_hash(
    conn: &Connection,
    tenant_name: &str,
    user: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT t.id, u.password_hash FROM tenants t JOIN users u ON u.tenant_id = t.id
              WHERE t.name = ?1 AND u.name = ?2 AND u.disabled_at IS NULL",
        )?
        .query_row(params![tenant_name, user], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Sets a user's password hash and ends every session of the user. Returns false when no such
/// user exists.
pub fn set_password_hash(conn: &Connection, tenant_id: &str, user: &str, hash: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("UPDATE users SET password_hash = ?3 WHERE tenant_id = ?1 AND name = ?2")?
        .execute(params![tenant_id, user, hash])?;
    conn.prepare_cached("DELETE FROM sessions WHERE tenant_id = ?1 AND user_name = ?2")?
        .execute(params![tenant_id, user])?;
    Ok(n == 1)
}

/// Stores a new session under the hash of its cookie value.
pub fn create(conn: &Connection, cookie: &str, s: &SessionRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sessions (hash, tenant_id, user_name, csrf, created_at, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        token_hash(cookie),
        s.tenant_id,
        s.user_name,
        s.csrf,
        timestamp(s.created_at),
        timestamp(s.seen_at)
    ])?;
    Ok(())
}

/// The session of a cookie value, if one is stored.
pub fn find(conn: &Connection, cookie: &str) -> Result<Option<SessionRecord>, StoreError> {
    type Row = (String, String, String, String, String, Option<String>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT tenant_id, user_name, csrf, created_at, seen_at, second_factor_at FROM sessions WHERE hash = ?1",
        )?
        .query_row([token_hash(cookie)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .optional()?;
    let Some((tenant_id, user_name, csrf, created, seen, second_factor)) = row else { return Ok(None) };
    let time = |column: &str, v: &str| {
        DateTime::parse_from_rfc3339(v)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt(format!("sessions.{column}: {e}")))
    };
    Ok(Some(SessionRecord {
        tenant_id,
        user_name,
        csrf,
        created_at: time("created_at", &created)?,
        seen_at: time("seen_at", &seen)?,
        second_factor_at: second_factor.as_deref().map(|v| time("second_factor_at", v)).transpose()?,
    }))
}

/// Removes the sessions no longer live at `now` (idle or old).
pub fn purge_expired(conn: &Connection, now: DateTime<Utc>) -> Result<(), StoreError> {
    let idle = timestamp(now - crate::domain::session::IDLE);
    let old = timestamp(now - crate::domain::session::ABSOLUTE);
    conn.prepare_cached("DELETE FROM sessions WHERE seen_at <= ?1 OR created_at <= ?2")?.execute(params![idle, old])?;
    Ok(())
}

/// Records a use of the session.
pub fn touch(conn: &Connection, cookie: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE sessions SET seen_at = ?2 WHERE hash = ?1")?
        .execute(params![token_hash(cookie), timestamp(at)])?;
    Ok(())
}

/// Ends a session; returns it if it existed.
pub fn delete(conn: &Connection, cookie: &str) -> Result<Option<SessionRecord>, StoreError> {
    let found = find(conn, cookie)?;
    conn.prepare_cached("DELETE FROM sessions WHERE hash = ?1")?.execute([token_hash(cookie)])?;
    Ok(found)
}
