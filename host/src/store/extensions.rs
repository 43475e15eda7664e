//! Extensions per tenant: the tenant's own scripts, and the host-wide plugins the tenant may
//! enable. Each has the tenant's settings: enabled, position, configuration and capability grants.

use super::{StoreError, from_json, to_json};
use crate::domain::extension::{ExtensionKind, World};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

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

/// Capabilities a tenant grants a plugin (only those its manifest also declares take effect).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Origins (`scheme://host:port`) the plugin may call.
    #[serde(default)]
    pub http: Vec<String>,
    /// Whether the plugin may send e-mail through the host's relay.
    #[serde(default)]
    pub mail: bool,
}

/// How a tenant uses one extension.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExtensionSetting {
    /// Extension name.
    pub name: String,
    /// Script, WASM or native.
    pub kind: ExtensionKind,
    /// For plugins: `approval-step`, `connector` or `notifier`; scripts are approval steps.
    pub world: World,
    /// For plugins, the plugin's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Content hash of its code.
    pub code_hash: String,
    /// Whether it runs for this tenant.
    pub enabled: bool,
    /// Steps run in ascending position, then by name.
    pub position: i64,
    /// Its configuration for this tenant (plugins: merged over the manifest defaults when run).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Capabilities granted.
    pub grants: Grants,
    /// Whether the tenant counts it as a compliance rule in reports (R10).
    pub compliance: bool,
    /// A script of the host's catalog the tenant has not adopted yet: enabling it adopts a copy.
    pub offered: bool,
    /// A newer version in the catalog, taken up with `"upgrade": true` (scripts) or by the
    /// operator's `greenlight plugin upgrade` (plugins, which are host-wide).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
}

/// The code behind an enabled extension.
#[derive(Debug, Clone)]
pub enum Code {
    /// A tenant script.
    Script(Script),
    /// A host-wide plugin version.
    Plugin(super::plugins::PluginRecord),
}

/// An enabled extension with everything needed to run it.
#[derive(Debug, Clone)]
pub struct Enabled {
    /// Extension name.
    pub name: String,
    /// Run order.
    pub position: i64,
    /// Tenant configuration.
    pub config: serde_json::Value,
    /// Tenant grants.
    pub grants: Grants,
    /// The code.
    pub code: Code,
}

/// Creates or replaces a script; its settings row is created disabled if missing. A replaced
/// script is the tenant's own from then on, no longer a copy of the catalog's.
pub fn upsert_script(
    conn: &Connection,
    tenant_id: &str,
    name: &str,
    source: &str,
    hash: &str,
    at: &str,
) -> Result<bool, StoreError> {
    let existed: bool = conn
        .prepare_cached("SELECT 1 FROM scripts WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant_id, name], |_| Ok(true))
        .optional()?
        .unwrap_or(false);
    conn.prepare_cached(
        "INSERT INTO scripts (tenant_id, name, source, hash, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant_id, name) DO UPDATE SET source = excluded.source, hash = excluded.hash, updated_at = excluded.updated_at,
             catalog_hash = NULL",
    )?
    .execute(params![tenant_id, name, source, hash, at])?;
    conn.prepare_cached("INSERT INTO tenant_extensions (tenant_id, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute(params![tenant_id, name])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO script_versions (tenant_id, hash, name, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![tenant_id, hash, name, source, at])?;
    Ok(existed)
}

/// A newer version of an extension the tenant uses, waiting to be taken up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Upgrade {
    /// The plugin version on offer (scripts have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Content hash of the newer code.
    pub code_hash: String,
}

fn decode(r: &rusqlite::Row<'_>) -> Result<ExtensionSetting, StoreError> {
    let name: String = r.get(0)?;
    let kind: String = r.get(1)?;
    let world: String = r.get(8)?;
    let kind = ExtensionKind::parse(&kind).ok_or_else(|| {
        StoreError::Corrupt(format!("plugin_versions.kind: '{kind}' of '{name}' is no extension kind"))
    })?;
    let world = World::parse(&world)
        .ok_or_else(|| StoreError::Corrupt(format!("plugin_versions.world: '{world}' of '{name}' is no world")))?;
    let config: Option<String> = r.get(6)?;
    let grants: Option<String> = r.get(7)?;
    let upgrade =
        r.get::<_, Option<String>>(11)?.map(|code_hash| Upgrade { version: r.get(12).ok().flatten(), code_hash });
    Ok(ExtensionSetting {
        kind,
        world,
        version: r.get(2)?,
        code_hash: r.get(3)?,
        enabled: r.get::<_, Option<bool>>(4)?.unwrap_or(false),
        position: r.get::<_, Option<i64>>(5)?.unwrap_or(100),
        config: from_json("tenant_extensions.config", config.as_deref().unwrap_or("{}"))?,
        grants: from_json("tenant_extensions.grants", grants.as_deref().unwrap_or("{}"))?,
        compliance: r.get::<_, Option<bool>>(9)?.unwrap_or(false),
        offered: r.get(10)?,
        upgrade,
        name,
    })
}

/// Every extension this tenant can use, in run order: its scripts, every installed plugin, and
/// the catalog's scripts it has not adopted yet (offered, disabled, with the catalog's
/// configuration). A newer version waiting in the catalog is named as an upgrade.
pub fn settings(conn: &Connection, tenant_id: &str) -> Result<Vec<ExtensionSetting>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.name, 'script', NULL, s.hash, e.enabled, e.position, e.config, e.grants, 'approval-step', e.compliance,
                0, CASE WHEN s.catalog_hash IS NOT NULL AND c.hash <> s.catalog_hash THEN c.hash END, NULL
           FROM scripts s
           LEFT JOIN tenant_extensions e ON e.tenant_id = s.tenant_id AND e.name = s.name
           LEFT JOIN catalog_scripts c ON c.name = s.name
           WHERE s.tenant_id = ?1
         UNION ALL
         SELECT p.name, v.kind, v.version, p.code_hash, e.enabled, e.position, e.config, e.grants, v.world, e.compliance,
                0, o.code_hash, o.version
           FROM plugins p
           JOIN plugin_versions v ON v.name = p.name AND v.code_hash = p.code_hash
           LEFT JOIN tenant_extensions e ON e.tenant_id = ?1 AND e.name = p.name
           LEFT JOIN plugin_offers o ON o.name = p.name
         UNION ALL
         SELECT c.name, 'script', NULL, c.hash, 0, NULL, c.config, NULL, 'approval-step', 0, 1, NULL, NULL
           FROM catalog_scripts c
           WHERE NOT EXISTS (SELECT 1 FROM scripts s WHERE s.tenant_id = ?1 AND s.name = c.name)
             AND NOT EXISTS (SELECT 1 FROM plugins p WHERE p.name = c.name)",
    )?;
    let mut rows = stmt.query([tenant_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(decode(r)?);
    }
    out.sort_by(|a, b| (a.position, &a.name).cmp(&(b.position, &b.name)));
    Ok(out)
}

/// The tenant's connector: its first enabled connector plugin in run order. It enriches orders
/// with ERP data before the steps run and receives approved orders (release, credit updates).
pub fn connector(conn: &Connection, tenant_id: &str) -> Result<Option<String>, StoreError> {
    Ok(settings(conn, tenant_id)?.into_iter().find(|e| e.enabled && e.world == World::Connector).map(|e| e.name))
}

/// What a tenant granted one extension (none when it never set it up).
pub fn grants(conn: &Connection, tenant_id: &str, name: &str) -> Result<Option<Grants>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT grants FROM tenant_extensions WHERE tenant_id = ?1 AND name = ?2")?
        .query_row([tenant_id, name], |r| r.get(0))
        .optional()?;
    text.map(|t| from_json("tenant_extensions.grants", &t)).transpose()
}

/// The enabled extensions of a tenant with their code, in run order.
pub fn enabled(conn: &Connection, tenant_id: &str) -> Result<Vec<Enabled>, StoreError> {
    // Scripts carry their source, plugins their manifest, in the same column.
    let mut stmt = conn.prepare_cached(
        "SELECT 'script', s.name, s.source, s.hash, NULL, e.position, e.config, e.grants FROM scripts s
           JOIN tenant_extensions e ON e.tenant_id = s.tenant_id AND e.name = s.name
           WHERE s.tenant_id = ?1 AND e.enabled = 1
         UNION ALL
         SELECT 'plugin', p.name, v.manifest, p.code_hash, p.installed_at, e.position, e.config, e.grants FROM plugins p
           JOIN plugin_versions v ON v.name = p.name AND v.code_hash = p.code_hash
           JOIN tenant_extensions e ON e.tenant_id = ?1 AND e.name = p.name
           WHERE e.enabled = 1
         ORDER BY 6, 2",
    )?;
    let rows = stmt.query_map([tenant_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    rows.map(|r| {
        let (kind, name, text, hash, installed_at, position, config, grants) = r?;
        let code = if kind == "script" {
            Code::Script(Script { name: name.clone(), source: text, hash })
        } else {
            Code::Plugin(super::plugins::PluginRecord {
                name: name.clone(),
                code_hash: hash,
                manifest: from_json("plugin_versions.manifest", &text)?,
                installed_at: installed_at.unwrap_or_default(),
            })
        };
        Ok(Enabled {
            name,
            position,
            config: from_json("tenant_extensions.config", &config)?,
            grants: from_json("tenant_extensions.grants", &grants)?,
            code,
        })
    })
    .collect()
}

/// A version of a tenant's script by its content hash: its name and source.
pub fn script_version(conn: &Connection, tenant_id: &str, hash: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT name, source FROM script_versions WHERE tenant_id = ?1 AND hash = ?2")?
        .query_row(params![tenant_id, hash], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Bytes of source in the tenant's scripts, the one named `except` not counted.
pub fn script_bytes(conn: &Connection, tenant_id: &str, except: &str) -> Result<usize, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(length(CAST(source AS BLOB))), 0) FROM scripts WHERE tenant_id = ?1 AND name <> ?2",
        )?
        .query_row(params![tenant_id, except], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Whether any tenant has a script of this name (plugin names must not clash with scripts).
pub fn script_name_in_use(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM scripts WHERE name = ?1 LIMIT 1")?
        .query_row([name], |_| Ok(true))
        .optional()?
        .unwrap_or(false))
}

/// Whether the tenant has a script of this name.
pub fn script_exists(conn: &Connection, tenant_id: &str, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM scripts WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant_id, name], |_| Ok(true))
        .optional()?
        .unwrap_or(false))
}

/// A change of a tenant's use of an extension; a field left `None` stays as it is.
#[derive(Debug, Clone, Default)]
pub struct ExtensionUpdate {
    /// Whether it runs for this tenant.
    pub enabled: bool,
    /// Run order (ascending).
    pub position: Option<i64>,
    /// Configuration object, replacing the previous one.
    pub config: Option<serde_json::Value>,
    /// Capabilities granted to a plugin (each must also be declared in its manifest).
    pub grants: Option<Grants>,
    /// Whether the tenant counts it as a compliance rule in reports (R10).
    pub compliance: Option<bool>,
    /// For a script adopted from the catalog: replace it with the catalog's newer version.
    pub upgrade: bool,
}

/// Updates (or creates) a tenant's settings for an extension known to exist.
pub fn update_setting(conn: &Connection, tenant_id: &str, name: &str, u: &ExtensionUpdate) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO tenant_extensions (tenant_id, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute(params![tenant_id, name])?;
    conn.prepare_cached(
        "UPDATE tenant_extensions SET enabled = ?3, position = COALESCE(?4, position), config = COALESCE(?5, config),
                grants = COALESCE(?6, grants), compliance = COALESCE(?7, compliance)
         WHERE tenant_id = ?1 AND name = ?2",
    )?
    .execute(params![
        tenant_id,
        name,
        u.enabled,
        u.position,
        u.config.as_ref().map(to_json).transpose()?,
        u.grants.as_ref().map(to_json).transpose()?,
        u.compliance,
    ])?;
    Ok(())
}
