//! Tampering with the audit log directly in the database file is detected by
//! `greenlight audit verify` and `GET /v1/audit/verify`, at the first bad entry.

use anyhow::Result;
use greenlight_tests::{Server, cli, order_body};
use rusqlite::Connection;
use serde_json::{Value, json};
use std::path::Path;

/// A database with a few dozen audit entries for tenant `acme`, and acme's admin token; the
/// server is stopped.
fn populated() -> Result<(tempfile::TempDir, std::path::PathBuf, String)> {
    let mut s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    for i in 0..4 {
        let id = alice.order(order_body(1, 100 + i))?;
        alice.submit(&id)?;
    }
    assert_eq!(admin.get("/v1/audit/verify")?.body["ok"], true);
    let db = s.db.clone();
    let dir = s.take_dir().expect("temp dir");
    s.kill9();
    Ok((dir, db, admin.token))
}

fn tamper(db: &Path, sql: &str) -> Result<()> {
    let c = Connection::open(db)?;
    // An attacker with the file can drop the append-only triggers; the chain still tells.
    c.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")?;
    c.execute_batch(sql)?;
    Ok(())
}

fn cli_verify(db: &Path) -> Result<(i32, Value)> {
    let (code, out, err) = cli(db, &["audit", "verify", "--tenant", "acme"])?;
    let v: Value = serde_json::from_str(out.trim()).map_err(|e| anyhow::anyhow!("{e}: {out} {err}"))?;
    Ok((code, v))
}

fn http_verify(db: &Path, token: &str) -> Result<Value> {
    let s = Server::on(db)?;
    Ok(s.client(token).get("/v1/audit/verify")?.body)
}

fn assert_bad_at(db: &Path, token: &str, seq: u64) -> Result<()> {
    let (code, v) = cli_verify(db)?;
    assert_eq!(code, 1, "the CLI must fail: {v}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad_seq"], seq, "{v}");
    let http = http_verify(db, token)?;
    assert_eq!((http["ok"].clone(), http["first_bad_seq"].clone()), (json!(false), json!(seq)), "{http}");
    Ok(())
}

#[test]
fn an_untouched_log_verifies() -> Result<()> {
    let (_dir, db, token) = populated()?;
    assert_eq!(http_verify(&db, &token)?["ok"], true);
    let (code, v) = cli_verify(&db)?;
    assert_eq!((code, v["ok"].clone()), (0, json!(true)), "{v}");
    assert!(v["entries"].as_u64().unwrap_or(0) > 10);
    Ok(())
}

#[test]
fn the_triggers_refuse_changes_while_they_stand() -> Result<()> {
    let (_dir, db, _) = populated()?;
    let c = Connection::open(&db)?;
    assert!(c.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", []).is_err());
    assert!(c.execute("DELETE FROM audit_log WHERE seq = 3", []).is_err());
    Ok(())
}

#[test]
fn an_edited_entry_is_found() -> Result<()> {
    let (_dir, db, token) = populated()?;
    tamper(&db, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 5")?;
    assert_bad_at(&db, &token, 5)
}

#[test]
fn a_whitespace_only_change_of_any_stored_entry_is_found() -> Result<()> {
    // Leading, trailing and inner whitespace in the data, and a trailing space in a text column:
    // none of it is what was hashed.
    for (seq, sql) in [
        (4, "UPDATE audit_log SET data = ' ' || data WHERE seq = 4"),
        (6, "UPDATE audit_log SET data = data || char(10) WHERE seq = 6"),
        (3, "UPDATE audit_log SET data = replace(data, ':', ': ') WHERE seq = 3"),
        (8, "UPDATE audit_log SET action = action || ' ' WHERE seq = 8"),
    ] {
        let (_dir, db, token) = populated()?;
        tamper(&db, sql)?;
        assert_bad_at(&db, &token, seq)?;
    }
    Ok(())
}

#[test]
fn an_edited_entry_with_a_recomputed_hash_breaks_the_next_link() -> Result<()> {
    let (_dir, db, token) = populated()?;
    // Change entry 5's data and forge its hash; entry 6 still points at the old hash.
    tamper(&db, "UPDATE audit_log SET data = '{\"forged\":true}', hash = 'ffff' || substr(hash, 5) WHERE seq = 5")?;
    assert_bad_at(&db, &token, 5)
}

#[test]
fn a_deleted_entry_is_found() -> Result<()> {
    let (_dir, db, token) = populated()?;
    tamper(&db, "DELETE FROM audit_log WHERE seq = 7")?;
    assert_bad_at(&db, &token, 7)
}

#[test]
fn reordered_entries_are_found() -> Result<()> {
    let (_dir, db, token) = populated()?;
    tamper(
        &db,
        "UPDATE audit_log SET seq = -1 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 6; UPDATE audit_log SET seq = 6 WHERE seq = -1;",
    )?;
    assert_bad_at(&db, &token, 4)
}

#[test]
fn an_inserted_entry_is_found() -> Result<()> {
    let (_dir, db, token) = populated()?;
    tamper(
        &db,
        "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 8;
         UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1008;
         INSERT INTO audit_log (tenant_id, seq, at, actor, action, order_id, data, prev_hash, hash)
           SELECT tenant_id, 8, at, 'mallory', 'order_approved', order_id, '{}', hash, hash FROM audit_log WHERE seq = 7;",
    )?;
    assert_bad_at(&db, &token, 8)
}

#[test]
fn export_is_json_lines_that_chain() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let id = admin.order(order_body(1, 1))?;
    admin.submit(&id)?;
    let r = admin.get("/v1/audit/export")?;
    let lines: Vec<Value> = r.text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert!(lines.len() >= 4);
    for pair in lines.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
        assert_eq!(pair[1]["seq"].as_u64(), pair[0]["seq"].as_u64().map(|s| s + 1));
    }
    for key in ["seq", "at", "actor", "action", "order_id", "data", "prev_hash", "hash"] {
        assert!(lines[2].get(key).is_some(), "{key} missing");
    }
    let after = admin.get("/v1/audit/export?after_seq=2")?;
    assert_eq!(after.text.lines().count(), lines.len() - 2);
    // A requester may not read the tenant's log.
    let alice = admin.user("alice", &["requester"], json!({}))?;
    assert_eq!(alice.get("/v1/audit/export")?.status, 403);
    Ok(())
}
