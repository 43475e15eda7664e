//! Scripts (per tenant) and each tenant's extension settings: enabled, position, config.

use super::{StoreError, from_json, to_json};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A tenant's Rhai script.
#[derive(Debug, Clone)]
pub struct Script {
    /// Extension name.
    pub name: String,
    /// Rhai source.
    pub source: String,
    /// SHA-256 of the source.
    pub hash: String,
}

/// How a tenant uses one extension.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExtensionSetting {
    /// Extension name.
    pub name: String,
    /// `script` (and, with the plugin runtime, `wasm` or `native`).
    pub kind: String,
    /// Content hash of its code.
    pub code_hash: String,
    /// Whether it runs for this tenant.
    pub enabled: bool,
    /// Steps run in ascending position, then by name.
    pub position: i64,
    /// Its configuration for this tenant.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

/// Creates or replaces a script; its settings row is created disabled if missing.
pub fn upsert_script(
    conn: &Connection,
    tenant_id: &str,
    name: &str,
    source: &str,
    hash: &str,
    at: &str,
) -> Result<bool, StoreError> {
    let existed: bool = conn
        .query_row("SELECT 1 FROM scripts WHERE tenant_id = ?1 AND name = ?2", params![tenant_id, name], |_| Ok(true))
        .optional()?
        .unwrap_or(false);
    conn.prepare_cached("INSERT INTO scripts (tenant_id, name, source, hash, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant_id, name) DO UPDATE SET source = excluded.source, hash = excluded.hash, updated_at = excluded.updated_at")?.execute(params![tenant_id, name, source, hash, at],
    )?;
    conn.prepare_cached("INSERT INTO tenant_extensions (tenant_id, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute(params![tenant_id, name])?;
    Ok(existed)
}

/// Every extension installed for the tenant with its settings, in run order.
pub fn settings(conn: &Connection, tenant_id: &str) -> Result<Vec<ExtensionSetting>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.name, s.hash, e.enabled, e.position, e.config FROM scripts s
         JOIN tenant_extensions e ON e.tenant_id = s.tenant_id AND e.name = s.name
         WHERE s.tenant_id = ?1 ORDER BY e.position, s.name",
    )?;
    let rows = stmt.query_map([tenant_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|r| {
        let (name, code_hash, enabled, position, config) = r?;
        Ok(ExtensionSetting {
            name,
            kind: "script".into(),
            code_hash,
            enabled,
            position,
            config: from_json("tenant_extensions.config", &config)?,
        })
    })
    .collect()
}

/// The enabled scripts of a tenant with their config, in run order.
pub fn enabled_scripts(conn: &Connection, tenant_id: &str) -> Result<Vec<(Script, serde_json::Value)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.name, s.source, s.hash, e.config FROM scripts s
         JOIN tenant_extensions e ON e.tenant_id = s.tenant_id AND e.name = s.name
         WHERE s.tenant_id = ?1 AND e.enabled = 1 ORDER BY e.position, s.name",
    )?;
    let rows = stmt.query_map([tenant_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
    })?;
    rows.map(|r| {
        let (name, source, hash, config) = r?;
        Ok((Script { name, source, hash }, from_json("tenant_extensions.config", &config)?))
    })
    .collect()
}

/// Updates a tenant's settings for an installed extension. Returns false if it is not installed.
pub fn update_setting(
    conn: &Connection,
    tenant_id: &str,
    name: &str,
    enabled: bool,
    position: Option<i64>,
    config: Option<&serde_json::Value>,
) -> Result<bool, StoreError> {
    let n = conn.prepare_cached("UPDATE tenant_extensions SET enabled = ?3, position = COALESCE(?4, position), config = COALESCE(?5, config)
         WHERE tenant_id = ?1 AND name = ?2")?.execute(params![tenant_id, name, enabled, position, config.map(to_json).transpose()?],
    )?;
    Ok(n == 1)
}
