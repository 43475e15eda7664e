//! The summary report (R10, R4) over HTTP against the real binary: what it counts after real
//! approvals and rejections, rejections by compliance rules told apart, JSON and CSV, who may
//! read it, and bad parameters refused.

use anyhow::Result;
use greenlight_tests::{Server, order_body};
use serde_json::{Value, json};

fn vendor_order(vendor: &str, unit_price_minor: i64) -> Value {
    let mut body = order_body(1, unit_price_minor);
    body["vendor_id"] = json!(vendor);
    body["cost_center"] = json!("CC-1");
    body
}

#[test]
fn the_summary_counts_real_outcomes_and_tells_compliance_rejections_apart() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let carol = admin.user("carol", &["compliance"], json!({}))?;
    let erin = admin.user("erin", &["executive"], json!({}))?;
    let grace = admin.user("grace", &["auditor"], json!({}))?;
    admin.user("dave", &["cost_center_manager"], json!({}))?;
    assert_eq!(admin.post("/v1/admin/cost-centers", json!({"code": "CC-1", "manager": "dave"}))?.status, 201);
    admin.enable_shipped("vendor-eligibility", 10)?;
    admin.enable_shipped("executive-threshold", 20)?;
    let r = admin.put("/v1/admin/extensions/vendor-eligibility", json!({"enabled": true, "compliance": true}))?;
    assert_eq!((r.status, r.body["compliance"].as_bool()), (200, Some(true)), "{}", r.text);

    let submit = |body: Value| -> Result<(String, Value)> {
        let id = alice.order(body)?;
        let r = alice.submit(&id)?;
        anyhow::ensure!(r.status == 200, "submit: {}", r.text);
        Ok((id, r.body))
    };
    // Approved at once (an approved vendor, below the executive threshold), twice.
    for _ in 0..2 {
        assert_eq!(submit(vendor_order("ACME", 100))?.1["status"], "approved");
    }
    // Rejected by the compliance rule itself: a blocked vendor.
    assert_eq!(submit(vendor_order("SHADY-CORP", 100))?.1["status"], "rejected");
    // Rejected by an approver on the stage the compliance rule added: compliance too.
    let (review, _) = submit(vendor_order("NEWCO", 100))?;
    assert_eq!(carol.decide(&review, "compliance", "reject", Some("unknown vendor"))?.status, 200);
    // Rejected by an approver on a stage of another rule: not compliance.
    let (big, _) = submit(vendor_order("ACME", 2_000_000))?;
    assert_eq!(erin.decide(&big, "executive", "reject", Some("too much"))?.status, 200);
    // Still open, and withdrawn.
    submit(vendor_order("NEWCO", 100))?;
    let (gone, _) = submit(vendor_order("NEWCO", 100))?;
    assert_eq!(alice.post_empty(&format!("/v1/orders/{gone}/withdraw"))?.status, 200);

    let r = grace.get("/v1/reports/summary")?;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    let n = |k: &str| b[k].as_u64();
    assert_eq!(
        (n("approved"), n("rejected"), n("rejected_compliance"), n("withdrawn"), n("open_now"), n("on_hold")),
        (Some(2), Some(3), Some(2), Some(1), Some(1), Some(0)),
        "{}",
        r.text
    );
    assert!(b["avg_approval_seconds"].as_i64().is_some_and(|s| (0..60).contains(&s)), "{}", r.text);
    assert!(b["median_approval_seconds"].is_i64() && b["p90_approval_seconds"].is_i64());
    assert_eq!(b["groups"], json!([]));

    let r = grace.get("/v1/reports/summary?group_by=cost_center")?;
    assert_eq!(r.body["groups"][0]["key"], "CC-1", "{}", r.text);
    assert_eq!(r.body["groups"][0]["rejected_compliance"], 2);

    // CSV: a header and one line per group, then the total.
    let csv = grace.download("/v1/reports/summary?group_by=month&format=csv")?;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").is_some_and(|t| t.starts_with("text/csv")));
    let text = String::from_utf8(csv.body)?;
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("group,approved,rejected,rejected_compliance,withdrawn"), "{text}");
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[2].starts_with("total,2,3,2,1,"), "{text}");

    // Only auditors and admins; the customer view counts only customer orders.
    assert_eq!(alice.get("/v1/reports/summary")?.status, 403);
    let r = admin.get("/v1/reports/summary?customer_orders=true")?;
    assert_eq!((r.status, r.body["approved"].as_u64()), (200, Some(0)), "{}", r.text);
    Ok(())
}

#[test]
fn bad_report_parameters_are_422_naming_the_parameter() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    for (query, field) in [
        ("group_by=week", "group_by"),
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-03-01&to=2026-02-01", "from"),
        ("from=1990-01-01&to=2026-01-01", "from"),
        ("format=xml", "format"),
    ] {
        let r = admin.get(&format!("/v1/reports/summary?{query}"))?;
        assert_eq!((r.status, r.code()), (422, "invalid_input"), "{query}: {}", r.text);
        assert!(r.text.contains(field), "{query}: {}", r.text);
    }
    assert_eq!(admin.get("/v1/reports/summary?unknown=1")?.status, 422);
    Ok(())
}
