//! A user's second factor: the TOTP secret being set up and the one in use, the last step used
//! (checked and moved in one statement, so a code cannot be used twice even by two requests at
//! once), recovery codes (hashes, each usable once), and a session's last step-up.

use super::{StoreError, directory::token_hash};
use crate::domain::audit::timestamp;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

/// A user's enrolled second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The secret, base32.
    pub secret: String,
    /// The last step a code was accepted for.
    pub last_step: Option<i64>,
    /// When it was enrolled.
    pub enabled_at: String,
}

/// Keeps the secret being set up (replacing any earlier one not confirmed).
pub fn set_pending(conn: &Connection, tenant_id: &str, user: &str, secret: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE users SET totp_pending = ?3 WHERE tenant_id = ?1 AND name = ?2 AND disabled_at IS NULL",
        )?
        .execute(params![tenant_id, user, secret])?;
    Ok(n == 1)
}

/// The secret being set up, if any.
pub fn pending(conn: &Connection, tenant_id: &str, user: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT totp_pending FROM users WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant_id, user], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// The enrolled second factor, if the user has one.
pub fn enrolled(conn: &Connection, tenant_id: &str, user: &str) -> Result<Option<Enrolled>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT totp_secret, totp_last_step, totp_enabled_at FROM users
              WHERE tenant_id = ?1 AND name = ?2 AND totp_secret IS NOT NULL",
        )?
        .query_row(params![tenant_id, user], |r| {
            Ok(Enrolled { secret: r.get(0)?, last_step: r.get(1)?, enabled_at: r.get(2)? })
        })
        .optional()?)
}

/// Makes the pending secret the user's second factor, with the step its first code used and new
/// recovery codes (hashes) replacing any earlier ones. False when nothing was pending.
pub fn enable(
    conn: &Connection,
    tenant_id: &str,
    user: &str,
    step: i64,
    at: DateTime<Utc>,
    recovery_hashes: &[String],
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ?3, totp_enabled_at = ?4
              WHERE tenant_id = ?1 AND name = ?2 AND totp_pending IS NOT NULL",
        )?
        .execute(params![tenant_id, user, step, timestamp(at)])?;
    if n == 0 {
        return Ok(false);
    }
    conn.prepare_cached("DELETE FROM recovery_codes WHERE tenant_id = ?1 AND user_name = ?2")?
        .execute(params![tenant_id, user])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO recovery_codes (tenant_id, user_name, hash) VALUES (?1, ?2, ?3)")?;
    for h in recovery_hashes {
        insert.execute(params![tenant_id, user, h])?;
    }
    Ok(true)
}

/// Takes a step as used if it is later than the last one used; false if it is not (a replay).
pub fn use_step(conn: &Connection, tenant_id: &str, user: &str, step: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE users SET totp_last_step = ?3
              WHERE tenant_id = ?1 AND name = ?2 AND totp_secret IS NOT NULL
                AND (totp_last_step IS NULL OR totp_last_step < ?3)",
        )?
        .execute(params![tenant_id, user, step])?;
    Ok(n == 1)
}

/// Uses a recovery code (by hash); false if there is no such unused code.
pub fn use_recovery(
    conn: &Connection,
    tenant_id: &str,
    user: &str,
    hash: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE recovery_codes SET used_at = ?4 WHERE tenant_id = ?1 AND user_name = ?2 AND hash = ?3 AND used_at IS NULL",
        )?
        .execute(params![tenant_id, user, hash, timestamp(at)])?;
    Ok(n == 1)
}

/// Recovery codes not used yet.
pub fn recovery_left(conn: &Connection, tenant_id: &str, user: &str) -> Result<usize, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM recovery_codes WHERE tenant_id = ?1 AND user_name = ?2 AND used_at IS NULL",
        )?
        .query_row(params![tenant_id, user], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Removes a user's second factor (enrolled and pending), their recovery codes and their
/// sessions' step-ups. False when they had none.
pub fn reset(conn: &Connection, tenant_id: &str, user: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL, totp_enabled_at = NULL
              WHERE tenant_id = ?1 AND name = ?2 AND (totp_secret IS NOT NULL OR totp_pending IS NOT NULL)",
        )?
        .execute(params![tenant_id, user])?;
    conn.prepare_cached("DELETE FROM recovery_codes WHERE tenant_id = ?1 AND user_name = ?2")?
        .execute(params![tenant_id, user])?;
    conn.prepare_cached("UPDATE sessions SET second_factor_at = NULL WHERE tenant_id = ?1 AND user_name = ?2")?
        .execute(params![tenant_id, user])?;
    Ok(n == 1)
}

/// Records that a session passed the second factor at `at`.
pub fn mark_session(conn: &Connection, cookie: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE sessions SET second_factor_at = ?2 WHERE hash = ?1")?
        .execute(params![token_hash(cookie), timestamp(at)])?;
    Ok(())
}
