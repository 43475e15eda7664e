//! Tenants, users, bearer tokens (stored as SHA-256 hashes only), cost centers and settings.

use super::{StoreError, from_json, to_json};
use crate::domain::actor::{Policy, Role};
use crate::domain::directory::{BudgetPeriod, CostCenter, Principal, Tenant, User};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// Hashes a token for storage and lookup. Tokens are 256-bit random, so a plain SHA-256 is
/// enough: there is nothing to brute-force.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random bearer token (256 bits from the OS), `glt_` + 64 hex digits.
pub fn new_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("no randomness available: {e}")))?;
    Ok(format!("glt_{}", hex::encode(bytes)))
}

fn now() -> String {
    crate::domain::audit::timestamp(chrono::Utc::now())
}

/// Creates a tenant. Fails if the name is taken.
pub fn create_tenant(conn: &Connection, name: &str) -> Result<Tenant, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let policy = Policy::default();
    conn.prepare_cached("INSERT INTO tenants (id, name, created_at, settings) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![id, name, now(), to_json(&policy)?])?;
    Ok(Tenant { id, name: name.to_string(), policy })
}

/// Looks a tenant up by name.
pub fn tenant_by_name(conn: &Connection, name: &str) -> Result<Option<Tenant>, StoreError> {
    conn.prepare_cached("SELECT id, name, settings FROM tenants WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .optional()?
        .map(|(id, name, s)| Ok(Tenant { id, name, policy: from_json("tenants.settings", &s)? }))
        .transpose()
}

/// Looks a tenant up by id.
pub fn tenant(conn: &Connection, id: &str) -> Result<Option<Tenant>, StoreError> {
    conn.prepare_cached("SELECT id, name, settings FROM tenants WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .optional()?
        .map(|(id, name, s)| Ok(Tenant { id, name, policy: from_json("tenants.settings", &s)? }))
        .transpose()
}

/// Every tenant id, for host-wide audit verification.
pub fn tenant_ids(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, name FROM tenants ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Saves the tenant's policy.
pub fn save_policy(conn: &Connection, tenant_id: &str, policy: &Policy) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE tenants SET settings = ?2 WHERE id = ?1")?
        .execute(params![tenant_id, to_json(policy)?])?;
    Ok(())
}

/// Inserts a user. Fails (constraint) if the name is taken.
pub fn insert_user(conn: &Connection, tenant_id: &str, u: &User) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO users (tenant_id, name, roles, email, phone, spend_limit_minor, budget_minor, budget_period, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(params![
            tenant_id,
            u.name,
            to_json(&u.roles)?,
            u.email,
            u.phone,
            u.spend_limit_minor,
            u.budget_minor,
            u.budget_period.map(BudgetPeriod::as_str),
            now()
        ],
    )?;
    index_roles(conn, tenant_id, &u.name, &u.roles)
}

/// Makes the role index (`user_roles`, what stages and role counts read) hold exactly `roles`
/// for the user: the one place that writes it besides a disable, which empties it.
fn index_roles(conn: &Connection, tenant_id: &str, name: &str, roles: &[Role]) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM user_roles WHERE tenant_id = ?1 AND name = ?2")?
        .execute(params![tenant_id, name])?;
    let mut insert = conn.prepare_cached("INSERT INTO user_roles (tenant_id, role, name) VALUES (?1, ?2, ?3)")?;
    for r in roles {
        insert.execute(params![tenant_id, r.as_str(), name])?;
    }
    Ok(())
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

type UserRow = (String, String, Option<String>, Option<String>, Option<i64>, Option<i64>, Option<String>);

fn user_decode(row: UserRow) -> Result<User, StoreError> {
    let (name, roles, email, phone, spend_limit_minor, budget_minor, period) = row;
    Ok(User {
        name,
        roles: from_json("users.roles", &roles)?,
        email,
        phone,
        spend_limit_minor,
        budget_minor,
        budget_period: period.as_deref().and_then(BudgetPeriod::parse),
    })
}

/// The tenant an order belongs to (the operator names orders without their tenant).
pub fn tenant_of_order(conn: &Connection, order_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT tenant_id FROM orders WHERE id = ?1")?
        .query_row([order_id], |r| r.get(0))
        .optional()?)
}

/// Looks an enabled user up: a disabled user is nobody to sign in, decide, be notified or
/// receive a delegation.
pub fn user(conn: &Connection, tenant_id: &str, name: &str) -> Result<Option<User>, StoreError> {
    conn.prepare_cached(
        "SELECT name, roles, email, phone, spend_limit_minor, budget_minor, budget_period FROM users
          WHERE tenant_id = ?1 AND name = ?2 AND disabled_at IS NULL",
    )?
    .query_row(params![tenant_id, name], user_from_row)
    .optional()?
    .map(user_decode)
    .transpose()
}

/// Whether the tenant has a user of this name, enabled or not (names are never reused).
pub fn name_taken(conn: &Connection, tenant_id: &str, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM users WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant_id, name], |_| Ok(()))
        .optional()?
        .is_some())
}

/// What disabling a user ended at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Disabled {
    /// Bearer tokens revoked.
    pub tokens_revoked: usize,
    /// Dashboard sessions ended.
    pub sessions_ended: usize,
    /// Delegations given or received that were running or planned, ended.
    pub delegations_ended: usize,
}

/// Disables an enabled user at `at`: their tokens and sessions are deleted, the delegations they
/// gave or received end, and they stop counting as holders of their roles (the roles stay on
/// record). `None` when there is no enabled user of that name.
pub fn disable_user(
    conn: &Connection,
    tenant_id: &str,
    name: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Disabled>, StoreError> {
    let when = crate::domain::audit::timestamp(at);
    // The password goes too: nothing of before works when the user is enabled again.
    let n = conn
        .prepare_cached(
            "UPDATE users SET disabled_at = ?3, password_hash = NULL WHERE tenant_id = ?1 AND name = ?2 AND disabled_at IS NULL",
        )?
        .execute(params![tenant_id, name, when])?;
    if n == 0 {
        return Ok(None);
    }
    let tokens_revoked = conn
        .prepare_cached("DELETE FROM tokens WHERE tenant_id = ?1 AND user_name = ?2")?
        .execute(params![tenant_id, name])?;
    let sessions_ended = conn
        .prepare_cached("DELETE FROM sessions WHERE tenant_id = ?1 AND user_name = ?2")?
        .execute(params![tenant_id, name])?;
    let delegations_ended = conn
        .prepare_cached(
            "UPDATE delegations SET until = MAX(?3, starts_at)
              WHERE tenant_id = ?1 AND (delegator = ?2 OR delegate = ?2) AND until > ?3",
        )?
        .execute(params![tenant_id, name, when])?;
    conn.prepare_cached("DELETE FROM user_roles WHERE tenant_id = ?1 AND name = ?2")?
        .execute(params![tenant_id, name])?;
    Ok(Some(Disabled { tokens_revoked, sessions_ended, delegations_ended }))
}

/// Enables a disabled user again, with the roles on record. They need a new token or a password
/// change to get in: nothing of before comes back. False when no disabled user has that name.
pub fn enable_user(conn: &Connection, tenant_id: &str, name: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE users SET disabled_at = NULL WHERE tenant_id = ?1 AND name = ?2 AND disabled_at IS NOT NULL",
        )?
        .execute(params![tenant_id, name])?;
    if n == 0 {
        return Ok(false);
    }
    let roles: String = conn
        .prepare_cached("SELECT roles FROM users WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant_id, name], |r| r.get(0))?;
    let roles: Vec<Role> = from_json("users.roles", &roles)?;
    index_roles(conn, tenant_id, name, &roles)?;
    Ok(true)
}

/// What a change of roles did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RolesChanged {
    /// The user.
    pub user: String,
    /// The roles they held before.
    pub before: Vec<Role>,
    /// The roles they hold now.
    pub roles: Vec<Role>,
    /// Delegations they gave that were running or planned, ended: a delegation lends the
    /// delegator's roles, and those are not the ones it was given for any more.
    pub delegations_ended: usize,
}

/// Gives an enabled user exactly `roles` (the record and the role index together) and, when
/// they change, ends the delegations the user gave. `None` when there is no enabled user of that
/// name.
pub fn change_roles(
    conn: &Connection,
    tenant_id: &str,
    name: &str,
    roles: &[Role],
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<RolesChanged>, StoreError> {
    let Some(before) = user(conn, tenant_id, name)?.map(|u| u.roles) else { return Ok(None) };
    conn.prepare_cached("UPDATE users SET roles = ?3 WHERE tenant_id = ?1 AND name = ?2")?.execute(params![
        tenant_id,
        name,
        to_json(&roles)?
    ])?;
    index_roles(conn, tenant_id, name, roles)?;
    let delegations_ended = if before == roles {
        0
    } else {
        conn.prepare_cached(
            "UPDATE delegations SET until = MAX(?3, starts_at) WHERE tenant_id = ?1 AND delegator = ?2 AND until > ?3",
        )?
        .execute(params![tenant_id, name, crate::domain::audit::timestamp(at)])?
    };
    Ok(Some(RolesChanged { user: name.to_string(), before, roles: roles.to_vec(), delegations_ended }))
}

/// A page of the tenant's users by name, after `after`, each with whether they have a password.
pub fn users(conn: &Connection, tenant_id: &str, after: &str, limit: usize) -> Result<Vec<(User, bool)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, roles, email, phone, spend_limit_minor, budget_minor, budget_period, password_hash IS NOT NULL
         FROM users WHERE tenant_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
    )?;
    let rows =
        stmt.query_map(params![tenant_id, after, limit as i64], |r| Ok((user_from_row(r)?, r.get::<_, bool>(7)?)))?;
    rows.map(|r| {
        let (u, has_password) = r?;
        Ok((user_decode(u)?, has_password))
    })
    .collect()
}

/// The users holding a role, by name.
pub fn users_with_role(conn: &Connection, tenant_id: &str, role: &str) -> Result<Vec<User>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.name, u.roles, u.email, u.phone, u.spend_limit_minor, u.budget_minor, u.budget_period
         FROM user_roles r JOIN users u ON u.tenant_id = r.tenant_id AND u.name = r.name
         WHERE r.tenant_id = ?1 AND r.role = ?2 ORDER BY r.name LIMIT 1000",
    )?;
    let rows = stmt.query_map(params![tenant_id, role], user_from_row)?;
    rows.map(|r| user_decode(r?)).collect()
}

/// How many users hold a role, `except` not counted, counting no further than `at_most`: whether
/// a stage for that role can ever be decided by someone other than the requester.
pub fn role_holders(
    conn: &Connection,
    tenant_id: &str,
    role: &str,
    except: &str,
    at_most: usize,
) -> Result<usize, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM (SELECT 1 FROM user_roles WHERE tenant_id = ?1 AND role = ?2 AND name <> ?3 LIMIT ?4)",
        )?
        .query_row(params![tenant_id, role, except, i64::try_from(at_most).unwrap_or(i64::MAX)], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Stores a token's hash for a user; `critical` tokens may do critical actions.
pub fn insert_token(
    conn: &Connection,
    tenant_id: &str,
    user: &str,
    token: &str,
    critical: bool,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO tokens (hash, tenant_id, user_name, created_at, critical) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![token_hash(token), tenant_id, user, now(), critical])?;
    Ok(())
}

/// Resolves a bearer token to its tenant and user.
pub fn principal(conn: &Connection, token: &str) -> Result<Option<Principal>, StoreError> {
    principal_by_hash(conn, &token_hash(token))
}

/// Resolves a bearer token, known by its hash, to its tenant and user.
pub fn principal_by_hash(conn: &Connection, hash: &str) -> Result<Option<Principal>, StoreError> {
    let found: Option<(String, String, bool)> = conn
        .prepare_cached("SELECT tenant_id, user_name, critical FROM tokens WHERE hash = ?1")?
        .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((tenant_id, user_name, critical)) = found else { return Ok(None) };
    let (Some(tenant), Some(user)) = (tenant(conn, &tenant_id)?, user(conn, &tenant_id, &user_name)?) else {
        return Ok(None);
    };
    Ok(Some(Principal { tenant, user, critical }))
}

/// Inserts a cost center.
pub fn insert_cost_center(conn: &Connection, tenant_id: &str, cc: &CostCenter) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO cost_centers (tenant_id, code, manager, budget_minor) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![tenant_id, cc.code, cc.manager, cc.budget_minor])?;
    Ok(())
}

/// Looks a cost center up.
pub fn cost_center(conn: &Connection, tenant_id: &str, code: &str) -> Result<Option<CostCenter>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT code, manager, budget_minor FROM cost_centers WHERE tenant_id = ?1 AND code = ?2")?
        .query_row(params![tenant_id, code], |r| {
            Ok(CostCenter { code: r.get(0)?, manager: r.get(1)?, budget_minor: r.get(2)? })
        })
        .optional()?)
}

/// The tenant's cost centers by code, at most `limit`.
pub fn cost_centers(conn: &Connection, tenant_id: &str, limit: usize) -> Result<Vec<CostCenter>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT code, manager, budget_minor FROM cost_centers WHERE tenant_id = ?1 ORDER BY code LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![tenant_id, limit as i64], |r| {
        Ok(CostCenter { code: r.get(0)?, manager: r.get(1)?, budget_minor: r.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Cost center codes the user manages (for the inbox).
pub fn managed_cost_centers(conn: &Connection, tenant_id: &str, manager: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT code FROM cost_centers WHERE tenant_id = ?1 AND manager = ?2")?;
    let rows = stmt.query_map(params![tenant_id, manager], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether a SQLite error is a uniqueness violation (a name already taken).
pub fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}
