//! kill -9 during a burst of submits: after a restart, every acknowledged change is there and no
//! change is half-written (an order's status, its audit entries, its outbox rows and its
//! evaluation record agree).

use anyhow::Result;
use greenlight_tests::{Server, order_body};
use rusqlite::Connection;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn kill_dash_nine_during_a_burst_loses_no_acknowledged_change() -> Result<()> {
    let mut s = Server::start()?;
    let admin = s.tenant("acme")?;
    admin.enable_shipped("vendor-eligibility", 10)?;
    admin.enable_shipped("executive-threshold", 20)?;
    let clients: Vec<_> =
        (0..6).map(|i| admin.user(&format!("req{i}"), &["requester"], json!({}))).collect::<Result<_>>()?;

    let stop = Arc::new(AtomicBool::new(false));
    // id -> last acknowledged status
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let mut body = order_body(1, 1_000 + n);
                    if n % 3 == 0 {
                        body["vendor_id"] = json!(if i % 2 == 0 { "SHADY-CORP" } else { "NEWCO" });
                    }
                    let Ok(r) = c.post("/v1/orders", body) else { break };
                    if r.status != 201 {
                        break;
                    }
                    let id = r.body["id"].as_str().unwrap_or_default().to_string();
                    acked.lock().expect("lock").insert(id.clone(), "draft".into());
                    let Ok(r) = c.submit(&id) else { break };
                    if r.status != 200 {
                        break;
                    }
                    let status = r.body["status"].as_str().unwrap_or_default().to_string();
                    acked.lock().expect("lock").insert(id, status);
                }
            })
        })
        .collect();

    // Let the burst build up, then crash the host in the middle of it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().expect("lock").values().filter(|s| *s != "draft").count() < 150
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let acked = acked.lock().expect("lock").clone();
    let submitted = acked.values().filter(|s| *s != "draft").count();
    assert!(submitted >= 50, "the burst was too small to mean anything: {submitted} submits");

    // Restart on the same file.
    let db = s.db.clone();
    let _dir = s.take_dir();
    let s2 = Server::on(&db)?;
    let admin2 = s2.client(&admin.token);
    for (id, status) in &acked {
        let r = admin2.get(&format!("/v1/orders/{id}"))?;
        assert_eq!(r.status, 200, "acknowledged order {id} is lost");
        let now = r.body["status"].as_str().unwrap_or_default();
        // A draft whose submit was in flight at the kill may have committed without its answer
        // reaching the client; anything acknowledged after a submit must be exactly as told.
        if status != "draft" {
            assert_eq!(now, status, "order {id} was acknowledged as {status}");
        }
    }
    assert_eq!(admin2.get("/v1/audit/verify")?.body["ok"], true);

    // No half-written change: every order's status agrees with its audit trail, outbox and
    // evaluation record, including the orders whose answer never reached the client.
    let c = Connection::open(&db)?;
    let mut stmt = c.prepare("SELECT id, status FROM orders")?;
    let orders: Vec<(String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    assert!(orders.len() >= acked.len());
    for (id, status) in orders {
        let actions: Vec<String> = c
            .prepare("SELECT action FROM audit_log WHERE order_id = ?1 ORDER BY seq")?
            .query_map([&id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let outbox: i64 = c.query_row("SELECT COUNT(*) FROM outbox WHERE order_id = ?1", [&id], |r| r.get(0))?;
        let evaluations: i64 =
            c.query_row("SELECT COUNT(*) FROM evaluations WHERE order_id = ?1", [&id], |r| r.get(0))?;
        assert_eq!(actions.first().map(String::as_str), Some("order_created"), "{id}");
        let expected_last = match status.as_str() {
            "draft" => "order_created",
            "approved" => "order_approved",
            "rejected" => "order_rejected",
            "pending_approval" => "stage_opened",
            "on_hold" => "order_held",
            other => panic!("unexpected status {other}"),
        };
        assert_eq!(
            actions.last().map(String::as_str),
            Some(expected_last),
            "{id} is {status} but its audit trail is {actions:?}"
        );
        if status == "draft" {
            assert_eq!((outbox, evaluations), (0, 0), "{id}: a draft has no notifications or evaluation");
        } else {
            assert_eq!(evaluations, 1, "{id}: one evaluation record per submit");
            assert!(outbox >= 2, "{id}: submitted and its outcome are in the outbox");
        }
    }
    Ok(())
}
