//! The plugin catalog: which version of each plugin is current, every version ever installed,
//! and the precompiled artifacts the host produced (with their SHA-256, so the host never loads
//! an artifact it did not produce itself).

use super::{StoreError, from_json, to_json};
use rusqlite::{Connection, OptionalExtension, params};

/// One installed plugin version.
#[derive(Debug, Clone)]
pub struct PluginRecord {
    /// Extension name.
    pub name: String,
    /// SHA-256 of the component or library bytes.
    pub code_hash: String,
    /// The manifest, as JSON.
    pub manifest: serde_json::Value,
    /// When this version was installed.
    pub installed_at: String,
}

/// A plugin version being installed.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// Extension name.
    pub name: &'a str,
    /// The plugin's version.
    pub version: &'a str,
    /// Its world.
    pub world: &'a str,
    /// `wasm` or `native`.
    pub kind: &'a str,
    /// SHA-256 of its code.
    pub code_hash: &'a str,
    /// Its manifest as JSON.
    pub manifest: &'a serde_json::Value,
    /// Now.
    pub at: &'a str,
}

/// Records a version without making it current (a catalog's offer).
pub fn record_version(conn: &Connection, v: &NewVersion<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO plugin_versions (code_hash, name, version, world, kind, manifest, installed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (name, code_hash) DO UPDATE SET manifest = excluded.manifest, version = excluded.version",
    )?
    .execute(params![v.code_hash, v.name, v.version, v.world, v.kind, to_json(v.manifest)?, v.at])?;
    Ok(())
}

/// Records a version and makes it the current one for its name; an offer of that version is
/// taken up.
pub fn install(conn: &Connection, v: &NewVersion<'_>) -> Result<(), StoreError> {
    record_version(conn, v)?;
    conn.prepare_cached("DELETE FROM plugin_offers WHERE name = ?1 AND code_hash = ?2")?
        .execute(params![v.name, v.code_hash])?;
    conn.prepare_cached(
        "INSERT INTO plugins (name, code_hash, installed_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET code_hash = excluded.code_hash, installed_at = excluded.installed_at",
    )?
    .execute(params![v.name, v.code_hash, v.at])?;
    Ok(())
}

const CURRENT: &str = "SELECT p.name, p.code_hash, v.manifest, p.installed_at FROM plugins p
     JOIN plugin_versions v ON v.name = p.name AND v.code_hash = p.code_hash";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode(
    (name, code_hash, manifest, installed_at): (String, String, String, String),
) -> Result<PluginRecord, StoreError> {
    Ok(PluginRecord { name, code_hash, manifest: from_json("plugin_versions.manifest", &manifest)?, installed_at })
}

/// Every current plugin.
pub fn current(conn: &Connection) -> Result<Vec<PluginRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{CURRENT} ORDER BY p.name"))?;
    let rows = stmt.query_map([], record)?;
    rows.map(|r| decode(r?)).collect()
}

/// The current version of one plugin.
pub fn get(conn: &Connection, name: &str) -> Result<Option<PluginRecord>, StoreError> {
    conn.prepare_cached(&format!("{CURRENT} WHERE p.name = ?1"))?
        .query_row([name], record)
        .optional()?
        .map(decode)
        .transpose()
}

/// A stored version of a plugin, current or not.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    /// Its world, as stored.
    pub world: String,
    /// `wasm` or `native`.
    pub kind: String,
    /// Its manifest as JSON.
    pub manifest: serde_json::Value,
}

/// One stored version of a plugin by its code hash.
pub fn version(conn: &Connection, name: &str, code_hash: &str) -> Result<Option<StoredVersion>, StoreError> {
    let row: Option<(String, String, String)> = conn
        .prepare_cached("SELECT world, kind, manifest FROM plugin_versions WHERE name = ?1 AND code_hash = ?2")?
        .query_row(params![name, code_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(world, kind, manifest)| {
        Ok(StoredVersion { world, kind, manifest: from_json("plugin_versions.manifest", &manifest)? })
    })
    .transpose()
}

/// The SHA-256 of the artifact the host produced for this code and engine, if any.
pub fn artifact(conn: &Connection, code_hash: &str, engine_hash: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT artifact_sha256 FROM artifacts WHERE code_hash = ?1 AND engine_hash = ?2")?
        .query_row(params![code_hash, engine_hash], |r| r.get(0))
        .optional()?)
}

/// Records an artifact the host just produced.
pub fn record_artifact(
    conn: &Connection,
    code_hash: &str,
    engine_hash: &str,
    sha256: &str,
    at: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO artifacts (code_hash, engine_hash, artifact_sha256, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (code_hash, engine_hash) DO UPDATE SET artifact_sha256 = excluded.artifact_sha256, created_at = excluded.created_at",
    )?
    .execute(params![code_hash, engine_hash, sha256, at])?;
    Ok(())
}
