//! Used decision links: a link's nonce is recorded in the transaction of the decision it made,
//! so a second use finds it, even one racing the first (the writer runs changes one at a time).

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

/// When the link with this nonce was used, if it was.
pub fn used_at(conn: &Connection, nonce: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT used_at FROM used_links WHERE nonce = ?1")?
        .query_row([nonce], |r| r.get(0))
        .optional()?)
}

/// Records a link as used; false when it already was.
pub fn mark_used(
    conn: &Connection,
    nonce: &str,
    tenant_id: &str,
    order_id: &str,
    at: &str,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO used_links (nonce, tenant_id, order_id, used_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?
        .execute(params![nonce, tenant_id, order_id, at])?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_used_once() {
        let mut conn = Connection::open_in_memory().expect("db");
        crate::store::schema::migrate(&mut conn).expect("schema");
        assert_eq!(used_at(&conn, "n1").expect("read"), None);
        assert!(mark_used(&conn, "n1", "t", "o", "2026-12-01T00:00:00Z").expect("write"));
        assert!(!mark_used(&conn, "n1", "t", "o", "2026-12-01T00:00:01Z").expect("write"), "the second use is refused");
        assert_eq!(used_at(&conn, "n1").expect("read").as_deref(), Some("2026-12-01T00:00:00Z"));
    }
}
