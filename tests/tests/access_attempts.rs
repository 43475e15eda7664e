//! Access attempts on record, end to end: sign-ins that work, fail or are throttled, the one
//! that locks an account, and API calls refused with 403, each listed for the tenant's admins
//! and auditors with who, from where and why; a bad token counted in `/metrics` without names.

use anyhow::{Result, ensure};
use greenlight_tests::{Client, Server, sign_in_form};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

fn sign_in(s: &Server, name: &str, password: &str) -> Result<u16> {
    Ok(sign_in_form(&s.url, &Client::agent(None), ("acme", name, password), Some("203.0.113.50"))?.0)
}

/// The tenant's attempts, once at least `n` are stored (they are written in batches).
fn attempts(admin: &Client, n: usize) -> Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = admin.get("/v1/admin/access-attempts?limit=1000")?;
        ensure!(r.status == 200, "{}", r.text);
        let list = r.body.as_array().cloned().unwrap_or_default();
        if list.len() >= n {
            return Ok(list);
        }
        ensure!(Instant::now() < deadline, "only {} of {n} attempts stored: {}", list.len(), r.text);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(list: &[Value], user: &str, outcome: &str) -> usize {
    list.iter().filter(|a| a["user"] == user && a["outcome"] == outcome).count()
}

#[test]
fn sign_ins_and_refused_calls_are_on_record_and_a_burst_locks_the_account() -> Result<()> {
    let s = Server::start_with(&["--trusted-proxy", "127.0.0.1"])?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    admin.user("bob", &["approver"], json!({}))?;
    admin.user("carol", &["approver"], json!({}))?;
    for u in ["bob", "carol"] {
        let r = admin.put(&format!("/v1/admin/users/{u}/password"), json!({"password": PASSWORD}))?;
        ensure!(r.status == 204, "{}", r.text);
    }

    // Bob mistypes twice, then gets in; someone tries a name that does not exist.
    ensure!(sign_in(&s, "bob", "wrong one")? == 401 && sign_in(&s, "bob", "wrong two")? == 401);
    ensure!(sign_in(&s, "bob", PASSWORD)? == 303);
    ensure!(sign_in(&s, "mallory", "guess")? == 401);
    // Alice calls what her role does not allow; someone calls with a made-up token.
    ensure!(alice.get("/v1/admin/access-review")?.status == 403);
    ensure!(Client::new(&s.url, "glt_made_up").get("/v1/orders")?.status == 401);

    // Carol's account is hammered: three failures, then throttled attempts, the tenth locks it,
    // and then even her right password waits.
    for _ in 0..3 {
        ensure!(sign_in(&s, "carol", "guess")? == 401);
    }
    for i in 4..=10 {
        ensure!(sign_in(&s, "carol", "guess")? == 429, "attempt {i} is refused (the tenth locks)");
    }
    ensure!(sign_in(&s, "carol", PASSWORD)? == 429, "locked: the right password waits too");

    let list = attempts(&admin, 16)?;
    ensure!(count(&list, "bob", "failed") == 2 && count(&list, "bob", "signed_in") == 1, "{list:?}");
    ensure!(count(&list, "mallory", "failed") == 1, "an unknown name is on record: {list:?}");
    ensure!(count(&list, "carol", "failed") == 3 && count(&list, "carol", "throttled") == 7, "{list:?}");
    ensure!(count(&list, "carol", "locked") == 1, "the lock is on record once: {list:?}");
    let forbidden: Vec<&Value> = list.iter().filter(|a| a["outcome"] == "forbidden").collect();
    ensure!(forbidden.len() == 1 && forbidden[0]["user"] == "alice", "{forbidden:?}");
    ensure!(forbidden[0]["channel"] == "api", "{forbidden:?}");
    let reason = forbidden[0]["reason"].as_str().unwrap_or_default();
    ensure!(
        reason.starts_with("GET /v1/admin/access-review: ") && reason.contains("needs one of the roles"),
        "{reason}"
    );
    ensure!(list.iter().all(|a| a["user"] != Value::Null), "the bad token belongs to no tenant: {list:?}");
    let bob = list.iter().find(|a| a["user"] == "bob" && a["outcome"] == "signed_in").cloned().unwrap_or_default();
    ensure!(bob["address"] == "203.0.113.50" && bob["channel"] == "sign_in" && bob["at"].is_string(), "{bob}");
    // Newest first.
    let times: Vec<&str> = list.iter().filter_map(|a| a["at"].as_str()).collect();
    ensure!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Filters, and who may read.
    let locked = admin.get("/v1/admin/access-attempts?outcome=locked")?.body;
    ensure!(locked.as_array().map(Vec::len) == Some(1), "{locked}");
    ensure!(admin.get("/v1/admin/access-attempts?outcome=maybe")?.status == 422);
    ensure!(admin.get("/v1/admin/access-attempts?from=2030-01-01&to=2029-01-01")?.status == 422);
    ensure!(alice.get("/v1/admin/access-attempts")?.status == 403);
    ensure!(admin.get("/v1/admin/access-attempts?to=2020-01-01")?.body == json!([]), "an old period is empty");

    // /metrics counts without names.
    let metrics = Client::new(&s.url, "").get("/metrics")?.text;
    for line in [
        "greenlight_access_attempts_total{channel=\"sign_in\",outcome=\"locked\"} 1",
        "greenlight_access_attempts_total{channel=\"sign_in\",outcome=\"failed\"} 6",
        "greenlight_access_attempts_total{channel=\"api\",outcome=\"unauthorized\"} 1",
    ] {
        ensure!(metrics.contains(line), "{line} in {metrics}");
    }
    ensure!(!metrics.contains("carol") && !metrics.contains("203.0.113"), "no names or addresses");
    Ok(())
}
