//! Access attempts on record, end to end: sign-ins that work, fail or are throttled, the one
//! that locks an account (audited, and e-mailed to the tenant's admins through the outbox by a
//! real SMTP server), and API calls refused with 403, each listed for the tenant's admins and
//! auditors with who, from where and why; a bad token counted in `/metrics` without names.

use anyhow::{Result, ensure};
use greenlight_tests::{Client, Server, SmtpSink, fast_delivery, sign_in_form};
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
    let smtp = SmtpSink::start()?;
    let relay = smtp.url();
    let mut args = fast_delivery("3");
    args.extend(["--trusted-proxy", "127.0.0.1", "--smtp-relay", &relay]);
    let s = Server::start_with(&args)?;
    let admin = s.tenant("acme")?;
    // The admins who hear of a lock: those with an address (the first admin has none).
    admin.user("dana", &["admin"], json!({"email": "dana@acme.test"}))?;
    admin.user("erin", &["admin", "auditor"], json!({"email": "erin@acme.test"}))?;
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
    // A name that is no user is throttled like any, but its "lock" is nobody's to be told of.
    for _ in 0..10 {
        sign_in(&s, "mallory", "guess")?;
    }

    // The lock is in the audit chain and reaches the admins by e-mail, once, through the outbox:
    // the message carries its delivery id, which the delivery list shows as delivered.
    let mails = smtp.wait_for(1, Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_millis(500));
    let mails = if smtp.messages().len() > mails.len() { smtp.messages() } else { mails };
    ensure!(mails.len() == 1, "one notice, for carol only: {mails:?}");
    let mail = &mails[0];
    let to = mail.header("to").unwrap_or_default();
    ensure!(to.contains("dana@acme.test") && to.contains("erin@acme.test"), "{to}");
    ensure!(mail.header("subject").is_some_and(|s| s.contains("carol") && s.contains("locked")), "{mail:?}");
    ensure!(mail.body.contains("10 failed or refused sign-ins") && mail.body.contains("203.0.113.50"), "{mail:?}");
    let delivery = mail.header("x-greenlight-delivery").unwrap_or_default().to_string();
    let listed = admin.get("/v1/admin/deliveries?state=delivered")?.body;
    let listed = listed["deliveries"].as_array().cloned().unwrap_or_default();
    ensure!(
        listed.iter().any(|d| d["id"] == delivery.as_str()
            && d["kind"] == "mail"
            && d["event"] == "account_locked"
            && d["channel"] == "host:mail"),
        "{delivery} in {listed:?}"
    );
    let audit = admin.get("/v1/audit/export")?.text;
    let locks: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["action"] == "account_locked")
        .collect();
    ensure!(locks.len() == 1, "{locks:?}");
    let lock = &locks[0];
    ensure!(lock["actor"] == "greenlight:access-guard" && lock["data"]["user"] == "carol", "{lock}");
    ensure!(lock["data"]["during"] == "sign_in" && lock["data"]["failures"] == 10, "{lock}");

    let list = attempts(&admin, 26)?;
    ensure!(count(&list, "bob", "failed") == 2 && count(&list, "bob", "signed_in") == 1, "{list:?}");
    ensure!(count(&list, "mallory", "failed") == 3, "an unknown name is on record: {list:?}");
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
    ensure!(locked.as_array().map(Vec::len) == Some(2), "carol, and the name that is no user: {locked}");
    ensure!(admin.get("/v1/admin/access-attempts?outcome=maybe")?.status == 422);
    ensure!(admin.get("/v1/admin/access-attempts?from=2030-01-01&to=2029-01-01")?.status == 422);
    ensure!(alice.get("/v1/admin/access-attempts")?.status == 403);
    ensure!(admin.get("/v1/admin/access-attempts?to=2020-01-01")?.body == json!([]), "an old period is empty");

    // /metrics counts without names.
    let metrics = Client::new(&s.url, "").get("/metrics")?.text;
    for line in [
        "greenlight_access_attempts_total{channel=\"sign_in\",outcome=\"locked\"} 2",
        "greenlight_access_attempts_total{channel=\"sign_in\",outcome=\"failed\"} 8",
        "greenlight_access_attempts_total{channel=\"api\",outcome=\"unauthorized\"} 1",
    ] {
        ensure!(metrics.contains(line), "{line} in {metrics}");
    }
    ensure!(!metrics.contains("carol") && !metrics.contains("203.0.113"), "no names or addresses");
    Ok(())
}
