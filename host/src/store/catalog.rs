//! The shipped catalog as the store keeps it: scripts offered to every tenant, and plugin
//! versions offered while another version of the name is current.

use super::{StoreError, from_json, to_json};
use rusqlite::{Connection, OptionalExtension, params};

/// A script of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogScript {
    /// Extension name.
    pub name: String,
    /// Rhai source.
    pub source: String,
    /// SHA-256 of the source.
    pub hash: String,
    /// The configuration a tenant starts with when it adopts the script.
    pub config: serde_json::Value,
}

/// What storing a catalog entry changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It was not there before.
    New,
    /// Another version was there.
    Updated,
    /// The same version was there: nothing changed.
    Unchanged,
}

/// Stores a catalog script, replacing another version of it.
pub fn put_script(conn: &Connection, s: &CatalogScript, at: &str) -> Result<Change, StoreError> {
    let before: Option<(String, String)> = conn
        .prepare_cached("SELECT hash, config FROM catalog_scripts WHERE name = ?1")?
        .query_row([&s.name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let config = to_json(&s.config)?;
    let change = match &before {
        None => Change::New,
        Some((hash, cfg)) if *hash == s.hash && *cfg == config => return Ok(Change::Unchanged),
        Some(_) => Change::Updated,
    };
    conn.prepare_cached(
        "INSERT INTO catalog_scripts (name, source, hash, config, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO UPDATE SET source = excluded.source, hash = excluded.hash, config = excluded.config,
             updated_at = excluded.updated_at",
    )?
    .execute(params![s.name, s.source, s.hash, config, at])?;
    Ok(change)
}

/// A catalog script by name.
pub fn script(conn: &Connection, name: &str) -> Result<Option<CatalogScript>, StoreError> {
    let row: Option<(String, String, String, String)> = conn
        .prepare_cached("SELECT name, source, hash, config FROM catalog_scripts WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    row.map(|(name, source, hash, config)| {
        Ok(CatalogScript { name, source, hash, config: from_json("catalog_scripts.config", &config)? })
    })
    .transpose()
}

/// Records a plugin version the catalog offers; returns whether the offer is new.
pub fn offer_plugin(
    conn: &Connection,
    name: &str,
    code_hash: &str,
    version: &str,
    at: &str,
) -> Result<bool, StoreError> {
    let same: bool = conn
        .prepare_cached("SELECT 1 FROM plugin_offers WHERE name = ?1 AND code_hash = ?2")?
        .query_row(params![name, code_hash], |_| Ok(true))
        .optional()?
        .unwrap_or(false);
    if same {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO plugin_offers (name, code_hash, version, offered_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET code_hash = excluded.code_hash, version = excluded.version, offered_at = excluded.offered_at",
    )?
    .execute(params![name, code_hash, version, at])?;
    Ok(true)
}

/// The version of a plugin on offer, if any: its code hash and version.
pub fn plugin_offer(conn: &Connection, name: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT code_hash, version FROM plugin_offers WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Withdraws the offer of another version of a plugin.
pub fn withdraw_offer(conn: &Connection, name: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM plugin_offers WHERE name = ?1")?.execute([name])?;
    Ok(())
}

/// Marks a tenant's script as a copy of this catalog version.
pub fn adopted(conn: &Connection, tenant_id: &str, name: &str, catalog_hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE scripts SET catalog_hash = ?3 WHERE tenant_id = ?1 AND name = ?2")?
        .execute(params![tenant_id, name, catalog_hash])?;
    Ok(())
}
