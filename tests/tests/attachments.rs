//! Attachments (R9) over HTTP against the real binary: documents stored once by content hash,
//! audited in the same change, listed and downloaded safely, bounded in size, visible only to
//! those who may see the order, and checked by the deep audit verification.

use anyhow::Result;
use greenlight_tests::{Server, cli, order_body};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A small but real PDF.
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn a_document_is_attached_once_audited_listed_and_downloaded_safely() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let grace = admin.user("grace", &["auditor"], json!({}))?;
    let first = alice.order(order_body(1, 100))?;
    let second = alice.order(order_body(2, 100))?;

    let r = alice.post_bytes(&format!("/v1/orders/{first}/attachments?filename=../../quote%202026.pdf"), PDF)?;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["sha256"], sha(PDF));
    assert_eq!(
        (r.body["filename"].as_str(), r.body["size"].as_u64()),
        (Some("quote 2026.pdf"), Some(PDF.len() as u64))
    );
    assert_eq!(r.body["content_type"], "application/pdf");
    // Again on the same order: nothing new. On another order: attached, stored once.
    let again = alice.post_bytes(&format!("/v1/orders/{first}/attachments?filename=other.pdf"), PDF)?;
    assert_eq!((again.status, again.body["filename"].as_str()), (200, Some("quote 2026.pdf")));
    assert_eq!(alice.post_bytes(&format!("/v1/orders/{second}/attachments?filename=q.pdf"), PDF)?.status, 201);
    let db = rusqlite::Connection::open(&s.db)?;
    let blobs: i64 = db.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))?;
    assert_eq!(blobs, 1, "the same document is stored once");

    // The hash is in the audit trail, once per order.
    let entry = alice.audit_entry(&first, "attachment_added")?;
    assert_eq!((entry["actor"].as_str(), entry["data"]["sha256"].as_str()), (Some("alice"), Some(sha(PDF).as_str())));
    let added = alice.audit(&first)?.iter().filter(|e| e["action"] == "attachment_added").count();
    assert_eq!(added, 1);

    let list = grace.get(&format!("/v1/orders/{first}/attachments"))?;
    assert_eq!(list.body["attachments"].as_array().map(Vec::len), Some(1), "{}", list.text);
    let d = grace.download(&format!("/v1/orders/{first}/attachments/{}", sha(PDF)))?;
    assert_eq!((d.status, d.body.as_slice()), (200, PDF));
    assert_eq!(d.header("content-disposition"), Some("attachment; filename=\"quote 2026.pdf\""));
    assert_eq!(d.header("x-content-type-options"), Some("nosniff"));
    assert!(
        d.header("content-security-policy").is_some_and(|c| c.contains("default-src 'none'") && c.contains("sandbox"))
    );

    // An HTML file is kept, but never served as something a browser would run here.
    let html = b"<html><script>alert(document.cookie)</script></html>";
    let r = alice.post_bytes(&format!("/v1/orders/{first}/attachments?filename=evil.html"), html)?;
    assert_eq!(r.status, 201, "{}", r.text);
    let d = alice.download(&format!("/v1/orders/{first}/attachments/{}", sha(html)))?;
    assert!(d.header("content-disposition").is_some_and(|c| c.starts_with("attachment")));
    assert!(d.header("content-security-policy").is_some_and(|c| c.contains("sandbox")));
    Ok(())
}

#[test]
fn attachments_are_bounded_named_and_only_for_those_who_see_the_order() -> Result<()> {
    let s = Server::start_with(&["--max-attachment-mib", "1"])?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let mallory = admin.user("mallory", &["requester"], json!({}))?;
    let other = s.tenant("globex")?;
    let id = alice.order(order_body(1, 100))?;
    let path = format!("/v1/orders/{id}/attachments");

    let big = vec![b'x'; (1 << 20) + 1];
    let r = alice.post_bytes(&format!("{path}?filename=big.bin"), &big)?;
    assert_eq!((r.status, r.code()), (413, "body_too_large"), "{}", r.text);
    assert_eq!(alice.post_bytes(&format!("{path}?filename=ok.bin"), &big[..1 << 20])?.status, 201);
    for bad in ["", "..", "%2F", "%3F%3F%3F"] {
        let r = alice.post_bytes(&format!("{path}?filename={bad}"), PDF)?;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (422, Some("filename")), "{bad}: {}", r.text);
    }
    assert_eq!(alice.post_bytes(&path, PDF)?.status, 422, "a file name is required");
    assert_eq!(alice.post_bytes(&format!("{path}?filename=empty.pdf"), b"")?.status, 422);

    // Someone who may not see the order, and another tenant's admin: 404, as for the order.
    for stranger in [&mallory, &other] {
        assert_eq!(stranger.post_bytes(&format!("{path}?filename=x.pdf"), PDF)?.status, 404);
        assert_eq!(stranger.get(&path)?.status, 404);
        assert_eq!(stranger.download(&format!("{path}/{}", sha(&big[..1 << 20])))?.status, 404);
    }
    assert_eq!(alice.download(&format!("{path}/{}", sha(b"never attached")))?.status, 404);
    Ok(())
}

#[test]
fn the_deep_verification_finds_a_changed_document() -> Result<()> {
    let mut s = Server::start()?;
    let admin = s.tenant("acme")?;
    let id = admin.order(order_body(1, 100))?;
    assert_eq!(admin.post_bytes(&format!("/v1/orders/{id}/attachments?filename=c.pdf"), PDF)?.status, 201);
    let deep = admin.get("/v1/audit/verify?deep=true")?;
    assert_eq!(
        (deep.body["ok"].as_bool(), deep.body["documents"]["checked"].as_u64()),
        (Some(true), Some(1)),
        "{}",
        deep.text
    );
    // The append-only triggers refuse a change; someone with the file can drop them.
    let db = rusqlite::Connection::open(&s.db)?;
    assert!(db.execute("UPDATE blobs SET data = x'00'", []).is_err());
    db.execute_batch("DROP TRIGGER blobs_no_update; UPDATE blobs SET data = CAST('%PDF-forged' AS BLOB);")?;
    let deep = admin.get("/v1/audit/verify?deep=true")?;
    assert_eq!(deep.body["ok"], false, "{}", deep.text);
    assert_eq!(deep.body["documents"]["changed"], json!([sha(PDF)]));
    assert_eq!(admin.get("/v1/audit/verify")?.body["ok"], true, "the chain itself is intact");
    let db_path = s.db.clone();
    let _dir = s.take_dir();
    s.kill9();
    let (code, out, err) = cli(&db_path, &["audit", "verify", "--deep"])?;
    assert_eq!(code, 1, "{out} {err}");
    assert!(out.contains(&sha(PDF)), "{out}");
    Ok(())
}
