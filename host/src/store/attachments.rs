//! Attachments and the documents behind them: each document's bytes once per SHA-256 (`blobs`),
//! and per order which documents are attached under which name (`attachments`). Both tables are
//! append-only (triggers refuse changes), and a document is written in the change that attaches
//! it, with its audit entry.

use super::StoreError;
use crate::domain::attachment::Attachment;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// Keeps a document's bytes under their SHA-256 if they are not kept yet. Returns whether they
/// were new.
pub fn put_blob(conn: &Connection, sha256: &str, bytes: &[u8]) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("INSERT INTO blobs (sha256, size, data) VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING")?
        .execute(params![sha256, bytes.len() as i64, bytes])?;
    Ok(n == 1)
}

/// Attaches a kept document to an order. Returns false (and changes nothing) if the same
/// document is already attached to it.
pub fn attach(conn: &Connection, tenant_id: &str, order_id: &str, a: &Attachment) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO attachments (tenant_id, order_id, sha256, filename, content_type, size, added_by, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (tenant_id, order_id, sha256) DO NOTHING",
        )?
        .execute(params![
            tenant_id,
            order_id,
            a.sha256,
            a.filename,
            a.content_type,
            i64::try_from(a.size).unwrap_or(i64::MAX),
            a.added_by,
            a.added_at
        ])?;
    Ok(n == 1)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Attachment> {
    Ok(Attachment {
        sha256: r.get(0)?,
        filename: r.get(1)?,
        content_type: r.get(2)?,
        size: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
        added_by: r.get(4)?,
        added_at: r.get(5)?,
    })
}

/// An order's attachments, in the order they were added.
pub fn for_order(conn: &Connection, tenant_id: &str, order_id: &str) -> Result<Vec<Attachment>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT sha256, filename, content_type, size, added_by, added_at FROM attachments
         WHERE tenant_id = ?1 AND order_id = ?2 ORDER BY added_at, sha256",
    )?;
    let rows = stmt.query_map(params![tenant_id, order_id], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One attachment of an order with its bytes.
pub fn get(
    conn: &Connection,
    tenant_id: &str,
    order_id: &str,
    sha256: &str,
) -> Result<Option<(Attachment, Vec<u8>)>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT a.sha256, a.filename, a.content_type, a.size, a.added_by, a.added_at, b.data
             FROM attachments a JOIN blobs b ON b.sha256 = a.sha256
             WHERE a.tenant_id = ?1 AND a.order_id = ?2 AND a.sha256 = ?3",
        )?
        .query_row(params![tenant_id, order_id, sha256], |r| Ok((row(r)?, r.get::<_, Vec<u8>>(6)?)))
        .optional()?;
    Ok(found)
}

/// What checking a tenant's documents found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BlobCheck {
    /// Documents checked.
    pub checked: u64,
    /// Those whose bytes no longer match their SHA-256 (changed in the database file).
    pub changed: Vec<String>,
}

/// Rehashes every document attached to an order of the tenant.
pub fn verify_blobs(conn: &Connection, tenant_id: &str) -> Result<BlobCheck, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT b.sha256, b.data FROM blobs b
         WHERE b.sha256 IN (SELECT sha256 FROM attachments WHERE tenant_id = ?1) ORDER BY b.sha256",
    )?;
    let mut rows = stmt.query([tenant_id])?;
    let mut check = BlobCheck::default();
    while let Some(r) = rows.next()? {
        let sha: String = r.get(0)?;
        let data = r.get_ref(1)?.as_blob().unwrap_or_default();
        check.checked += 1;
        if hex::encode(Sha256::digest(data)) != sha {
            check.changed.push(sha);
        }
    }
    Ok(check)
}
