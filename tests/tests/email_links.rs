//! Deciding from the e-mail, end to end: the real binary sends the stage e-mail through the real
//! SMTP server of the e-mail tests; the test reads the approve and reject links from the message
//! and follows them like a browser: opening decides nothing, confirming decides once, under the
//! API's rules, audited `via: "email_link"`; a changed order, a used, forged or expired link and
//! a post from another origin change nothing. Keys rotate without breaking links in flight.

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use greenlight_tests::{Client, Server, SmtpSink, fast_delivery, order_body};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::path::Path;
use std::time::Duration;

const KEY_1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const KEY_2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn key_file(dir: &Path, name: &str, keys: &[(&str, &str)]) -> Result<String> {
    let text: String =
        keys.iter().map(|(id, secret)| format!("[[keys]]\nid = \"{id}\"\nsecret = \"{secret}\"\n")).collect();
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

/// A browser without cookies or redirects: what a mail client opens.
struct Browser(ureq::Agent);

impl Browser {
    fn new() -> Browser {
        Browser(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
        )
    }

    fn get(&self, url: &str) -> Result<(u16, String)> {
        let mut r = self.0.get(url).call()?;
        // The token is in the address: no page behind a link may hand it on in a Referer.
        let policy = r.headers().get("referrer-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        anyhow::ensure!(policy == "no-referrer", "{url} answered Referrer-Policy {policy:?}");
        Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
    }

    fn confirm(&self, url: &str, origin: &str, reason: &str) -> Result<(u16, String)> {
        let mut r = self.0.post(url).header("Origin", origin).send_form([("reason", reason)])?;
        Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
    }
}

/// The approve and reject links of a stage e-mail.
fn links(body: &str) -> Result<(String, String)> {
    let find = |label: &str| {
        body.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|u| u.trim().to_string())
            .with_context(|| format!("no '{label}' line in the mail: {body}"))
    };
    Ok((find("Approve: ")?, find("Reject: ")?))
}

/// The body of the first mail to `to` about `order` that `also` accepts, waiting up to 20 s
/// (the maildir's order is not the order of arrival, so mails are told apart by content).
fn mail_to(smtp: &SmtpSink, to: &str, order: &str, also: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mails = smtp.messages();
        let found = mails.iter().find(|m| m.header("to") == Some(to) && m.body.contains(order) && also(&m.body));
        if let Some(m) = found {
            return Ok(m.body.clone());
        }
        if std::time::Instant::now() > deadline {
            bail!("no mail to {to} about {order} among {mails:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(client: &Client, id: &str) -> Result<String> {
    Ok(client.get(&format!("/v1/orders/{id}"))?.body["status"].as_str().unwrap_or_default().to_string())
}

struct Setup {
    server: Server,
    smtp: SmtpSink,
    admin: Client,
    alice: Client,
}

fn setup(dir: &Path, keys: &str) -> Result<Setup> {
    let smtp = SmtpSink::start()?;
    let relay = smtp.url();
    let mut args = fast_delivery("3");
    args.extend(["--smtp-relay", relay.as_str(), "--link-keys", keys]);
    let server = Server::on_with(&dir.join("greenlight.db"), &args)?;
    server.install_plugin("notify-email")?;
    let admin = server.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({"email": "alice@acme.test"}))?;
    admin.user("bob", &["cost_center_manager"], json!({"email": "bob@acme.test"}))?;
    assert_eq!(admin.post("/v1/admin/cost-centers", json!({"code": "CC-1", "manager": "bob"}))?.status, 201);
    admin.enable_shipped("cost-center", 10)?;
    let r = admin.put(
        "/v1/admin/extensions/notify-email",
        json!({"enabled": true, "config": {"events": ["stage_opened"]}, "grants": {"mail": true}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);
    Ok(Setup { server, smtp, admin, alice })
}

fn new_order(alice: &Client) -> Result<String> {
    let mut body = order_body(2, 25_000);
    body["cost_center"] = json!("CC-1");
    let id = alice.order(body)?;
    assert_eq!(alice.submit(&id)?.status, 200);
    Ok(id)
}

#[test]
fn an_approver_decides_from_the_e_mail_once_and_nothing_else_gets_through() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let keys = key_file(dir.path(), "keys.toml", &[("k1", KEY_1)])?;
    let Setup { server, smtp, admin, alice } = setup(dir.path(), &keys)?;
    let web = Browser::new();
    let origin = server.url.clone();

    let id = new_order(&alice)?;
    let mail = mail_to(&smtp, "bob@acme.test", &id, |_| true)?;
    let (approve, reject) = links(&mail)?;
    assert!(approve.starts_with(&format!("{origin}/decide/k1.")), "{approve}");

    // Opening shows the order and decides nothing (a mail scanner may fetch it, twice).
    for _ in 0..2 {
        let (code, page) = web.get(&approve)?;
        assert_eq!(code, 200, "{page}");
        assert!(page.contains(&id) && page.contains("Confirm approval") && page.contains("bob"), "{page}");
    }
    assert_eq!(status(&admin, &id)?, "pending_approval");

    // A post from another site changes nothing.
    let (code, _) = web.confirm(&approve, "https://evil.example", "")?;
    assert_eq!(code, 403);
    // A rejection needs a reason: the page says so and nothing happens.
    let (code, page) = web.confirm(&reject, &origin, "  ")?;
    assert_eq!(code, 422, "{page}");
    assert!(page.contains("needs a reason"), "{page}");
    assert_eq!(status(&admin, &id)?, "pending_approval");

    // A forged link (the claims of this one, another tag) is refused.
    let forged = format!("{}{}", &approve[..approve.len() - 4], "AAAA");
    let (code, page) = web.get(&forged)?;
    assert_eq!(code, 403, "{page}");
    assert!(page.contains("not made by this Greenlight"), "{page}");
    assert_eq!(web.confirm(&forged, &origin, "")?.0, 403);

    // Confirming decides, as bob, recorded as coming from the e-mail.
    let (code, page) = web.confirm(&approve, &origin, "")?;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Decision recorded") && page.contains("approved"), "{page}");
    assert_eq!(status(&admin, &id)?, "approved");
    let entry = admin.audit_entry(&id, "decision_recorded")?;
    assert_eq!(entry["actor"], "bob");
    assert_eq!(entry["data"]["via"], "email_link", "{entry}");
    let order = admin.get(&format!("/v1/orders/{id}"))?.body;
    assert_eq!(order["plan"]["stages"][0]["decisions"][0]["via"], "email_link", "{order}");

    // Used once: a second confirmation and the reject link of the same mail change nothing.
    let (code, page) = web.confirm(&approve, &origin, "")?;
    assert_eq!(code, 409, "{page}");
    assert!(page.contains("already used"), "{page}");
    let (code, page) = web.get(&reject)?;
    assert_eq!(code, 409, "{page}");
    assert!(page.contains("it is approved"), "{page}");
    assert_eq!(web.confirm(&reject, &origin, "too late")?.0, 409);
    assert_eq!(status(&admin, &id)?, "approved");

    // A second order: rejected from its e-mail with a reason.
    let id2 = new_order(&alice)?;
    let (_, reject2) = links(&mail_to(&smtp, "bob@acme.test", &id2, |_| true)?)?;
    let (code, page) = web.get(&reject2)?;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Confirm rejection") && page.contains("name=\"reason\""), "{page}");
    let (code, page) = web.confirm(&reject2, &origin, "not in this quarter's plan")?;
    assert_eq!(code, 200, "{page}");
    let order = admin.get(&format!("/v1/orders/{id2}"))?.body;
    assert_eq!(order["status"], "rejected");
    assert_eq!(order["rejection"]["reason"], "not in this quarter's plan");
    assert_eq!(admin.audit_entry(&id2, "decision_recorded")?["data"]["via"], "email_link");

    // An expired link, signed by the test with the operator's key: refused, with its expiry.
    let claims = json!({"t": "x", "o": id2, "v": 1, "s": "cost-center", "a": "bob", "d": "approve", "e": 1_000_000_000, "n": "ab"});
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&hex::decode(KEY_1)?)?;
    mac.update(format!("k1.{body}").as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let (code, page) = web.get(&format!("{origin}/decide/k1.{body}.{tag}"))?;
    assert_eq!(code, 410, "{page}");
    assert!(page.contains("expired at 2001-09-09"), "{page}");

    // An order edited after its e-mail went out: the old links are for a round that is over;
    // the new e-mail's work.
    let id3 = new_order(&alice)?;
    let (old_approve, _) = links(&mail_to(&smtp, "bob@acme.test", &id3, |_| true)?)?;
    let r = alice.patch(&format!("/v1/orders/{id3}"), json!({"department": "Facilities"}))?;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("pending_approval")), "{}", r.text);
    let (code, page) = web.get(&old_approve)?;
    assert_eq!(code, 409, "{page}");
    assert!(page.contains("changed since"), "{page}");
    let (new_approve, _) = links(&mail_to(&smtp, "bob@acme.test", &id3, |b| !b.contains(&old_approve))?)?;
    assert_eq!(web.confirm(&new_approve, &origin, "")?.0, 200);
    assert_eq!(status(&admin, &id3)?, "approved");

    // The links never reach the database (nor its write-ahead log): only used nonces do.
    drop(server);
    let token = approve.rsplit('/').next().unwrap_or_default();
    for file in ["greenlight.db", "greenlight.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "a link was stored in {file}");
    }
    assert!(std::fs::metadata(dir.path().join("greenlight.db")).is_ok_and(|m| m.len() > 0));
    Ok(())
}

#[test]
fn links_signed_before_a_key_rotation_still_work_until_the_old_key_is_retired() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let first = key_file(dir.path(), "first.toml", &[("k1", KEY_1)])?;
    let Setup { server, smtp, admin, alice } = setup(dir.path(), &first)?;
    let id = new_order(&alice)?;
    let (approve, _) = links(&mail_to(&smtp, "bob@acme.test", &id, |_| true)?)?;
    drop(server);

    let web = Browser::new();
    // The operator puts a new key first and keeps the old one listed: the old link still works
    // (the host now listens elsewhere: the link's path is what counts).
    let path = approve.split_once("/decide/").map(|(_, t)| format!("/decide/{t}")).unwrap_or_default();
    let retired = key_file(dir.path(), "retired.toml", &[("k2", KEY_2)])?;
    let s = Server::on_with(&dir.path().join("greenlight.db"), &["--link-keys", &retired])?;
    let (code, page) = web.get(&format!("{}{path}", s.url))?;
    assert_eq!(code, 403, "with k1 retired, its links are refused: {page}");
    drop(s);
    let rotated = key_file(dir.path(), "rotated.toml", &[("k2", KEY_2), ("k1", KEY_1)])?;
    let s = Server::on_with(&dir.path().join("greenlight.db"), &["--link-keys", &rotated])?;
    let (code, page) = web.confirm(&format!("{}{path}", s.url), &s.url, "")?;
    assert_eq!(code, 200, "{page}");
    assert_eq!(status(&Client::new(&s.url, &admin.token), &id)?, "approved");
    // Without a key file, the host accepts no link at all.
    drop(s);
    let s = Server::on(&dir.path().join("greenlight.db"))?;
    let (code, page) = web.get(&format!("{}{path}", s.url))?;
    assert_eq!(code, 404, "{page}");
    assert!(page.contains("does not accept decision links"), "{page}");
    Ok(())
}
