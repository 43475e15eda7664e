//! The facts of an access review, per user, in one pass: roles, tokens, the last sign-in,
//! decision and audit entry of each (through the audit chain's per-actor indexes), and the
//! delegations they gave or received that have not ended.

use super::{StoreError, delegations, from_json};
use crate::domain::access_review::{DelegationLine, ReviewedUser, is_dormant};
use crate::domain::actor::Role;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

/// Most users one review lists.
pub const MAX_USERS: usize = 10_000;

fn time(field: &str, s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt(format!("{field}: '{s}' is not an RFC 3339 time: {e}")))
    })
    .transpose()
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    bool,
    bool,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Every user of the tenant by name (at most [`MAX_USERS`]), as the review shows them at `now`.
pub fn users(
    conn: &Connection,
    tenant_id: &str,
    now: DateTime<Utc>,
    dormant_after_days: u32,
) -> Result<Vec<ReviewedUser>, StoreError> {
    reviewed(conn, tenant_id, None, now, dormant_after_days)
}

/// One user of the tenant as the review shows them at `now` (the others' activity not read).
pub fn user(
    conn: &Connection,
    tenant_id: &str,
    name: &str,
    now: DateTime<Utc>,
    dormant_after_days: u32,
) -> Result<Option<ReviewedUser>, StoreError> {
    Ok(reviewed(conn, tenant_id, Some(name), now, dormant_after_days)?.pop())
}

/// The review's lines: every user, or the one named `only`.
fn reviewed(
    conn: &Connection,
    tenant_id: &str,
    only: Option<&str>,
    now: DateTime<Utc>,
    dormant_after_days: u32,
) -> Result<Vec<ReviewedUser>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.name, u.roles, u.created_at, u.disabled_at, u.password_hash IS NOT NULL, u.totp_secret IS NOT NULL,
                (SELECT count(*) FROM tokens t WHERE t.tenant_id = u.tenant_id AND t.user_name = u.name),
                (SELECT min(created_at) FROM tokens t WHERE t.tenant_id = u.tenant_id AND t.user_name = u.name),
                (SELECT max(created_at) FROM tokens t WHERE t.tenant_id = u.tenant_id AND t.user_name = u.name),
                (SELECT at FROM audit_log a INDEXED BY audit_by_actor
                  WHERE a.tenant_id = u.tenant_id AND a.actor = u.name ORDER BY a.seq DESC LIMIT 1),
                (SELECT at FROM audit_log a INDEXED BY audit_sign_ins
                  WHERE a.tenant_id = u.tenant_id AND a.actor = u.name AND a.action = 'signed_in' ORDER BY a.seq DESC LIMIT 1),
                (SELECT at FROM audit_log a INDEXED BY audit_decisions
                  WHERE a.tenant_id = u.tenant_id AND a.actor = u.name AND a.action = 'decision_recorded' ORDER BY a.seq DESC LIMIT 1)
           FROM users u WHERE u.tenant_id = ?1 AND (?3 IS NULL OR u.name = ?3) ORDER BY u.name LIMIT ?2",
    )?;
    let rows: Vec<Row> = stmt
        .query_map(params![tenant_id, MAX_USERS as i64, only], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut users = Vec::with_capacity(rows.len());
    for (
        name,
        roles,
        created,
        disabled,
        has_password,
        second_factor,
        tokens,
        oldest,
        newest,
        last_entry,
        sign_in,
        decision,
    ) in rows
    {
        let roles: Vec<Role> = from_json("users.roles", &roles)?;
        let created_at = time("users.created_at", Some(created))?.unwrap_or(now);
        let disabled_at = time("users.disabled_at", disabled)?;
        let oldest = time("tokens.created_at", oldest)?;
        let last_activity_at = time("audit_log.at", last_entry)?.max(time("tokens.created_at", newest)?);
        let (mut given, mut received) = (Vec::new(), Vec::new());
        for d in delegations::current_of(conn, tenant_id, &name, now)? {
            if d.delegator == name {
                given.push(DelegationLine { with: d.delegate, starts_at: d.from, until: d.until });
            } else {
                received.push(DelegationLine { with: d.delegator, starts_at: d.from, until: d.until });
            }
        }
        users.push(ReviewedUser {
            dormant: is_dormant(created_at, last_activity_at, disabled_at.is_some(), now, dormant_after_days),
            name,
            roles,
            created_at,
            disabled_at,
            has_password,
            second_factor,
            tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
            oldest_token_days: oldest.map(|t| (now - t).num_days()),
            last_sign_in_at: time("audit_log.at", sign_in)?,
            last_decision_at: time("audit_log.at", decision)?,
            last_activity_at,
            delegations_given: given,
            delegations_received: received,
        });
    }
    Ok(users)
}
