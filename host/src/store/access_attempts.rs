//! Access attempts, written in batches by the access log and read per tenant and period.

use super::StoreError;
use crate::domain::access_attempt::{AccessAttempt, AttemptOutcome, Channel};
use crate::domain::audit::timestamp;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

/// Writes a batch of attempts.
pub fn insert_many(conn: &Connection, attempts: &[AccessAttempt]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO access_attempts (tenant_id, at, channel, user_name, address, outcome, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for a in attempts {
        stmt.execute(params![
            a.tenant_id,
            timestamp(a.at),
            a.channel.as_str(),
            a.user,
            a.address,
            a.outcome.as_str(),
            a.reason
        ])?;
    }
    Ok(())
}

/// Removes the attempts made before `before`.
pub fn purge_before(conn: &Connection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached("DELETE FROM access_attempts WHERE at < ?1")?.execute([timestamp(before)])?)
}

/// A tenant's attempts in `[from, to)`, newest first, at most `limit`, of one outcome if given.
pub fn list(
    conn: &Connection,
    tenant_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    outcome: Option<AttemptOutcome>,
    limit: usize,
) -> Result<Vec<AccessAttempt>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, channel, user_name, address, outcome, reason FROM access_attempts
          WHERE tenant_id = ?1 AND at >= ?2 AND at < ?3 AND (?4 IS NULL OR outcome = ?4)
          ORDER BY at DESC, id DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![tenant_id, timestamp(from), timestamp(to), outcome.map(AttemptOutcome::as_str), limit as i64],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        },
    )?;
    rows.map(|r| {
        let (at, channel, user, address, outcome, reason) = r?;
        let corrupt = |what: &str, v: &str| StoreError::Corrupt(format!("access_attempts.{what}: '{v}'"));
        Ok(AccessAttempt {
            at: DateTime::parse_from_rfc3339(&at).map(|t| t.with_timezone(&Utc)).map_err(|_| corrupt("at", &at))?,
            tenant_id: Some(tenant_id.to_string()),
            channel: Channel::ALL
                .into_iter()
                .find(|c| c.as_str() == channel)
                .ok_or_else(|| corrupt("channel", &channel))?,
            user,
            address,
            outcome: AttemptOutcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
            reason,
        })
    })
    .collect()
}
