//! A plugin written in JavaScript (issue 17): `notify-chat`, built by `jco componentize`, installed
//! and run by the real binary like any plugin, posting to a local HTTP sink in Slack's
//! incoming-webhook format; and a JavaScript notifier that imports an interface its world does
//! not allow, refused at install with the interface's name.

use anyhow::Result;
use greenlight_tests::{Client, Receiver, Server, cli, order_body, plugins};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A tenant whose admin enabled the chat channel towards `origin`, with `config` besides the URL.
fn tenant_with_chat(s: &Server, origin: &str, config: Value) -> Result<Client> {
    s.install_plugin("notify-chat")?;
    let admin = s.tenant("acme")?;
    let mut config = config;
    config["url"] = json!(format!("{origin}/services/T000/B000/XXXX"));
    let r = admin.put(
        "/v1/admin/extensions/notify-chat",
        json!({"enabled": true, "position": 1, "config": config, "grants": {"http": [origin]}}),
    )?;
    anyhow::ensure!(r.status == 200, "enabling notify-chat: {}", r.text);
    Ok(admin)
}

/// The deliveries of a state, once there are `n` of them.
fn deliveries(admin: &Client, state: &str, n: usize) -> Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = admin.get(&format!("/v1/admin/deliveries?state={state}"))?;
        let found = r.body["deliveries"].as_array().cloned().unwrap_or_default();
        if found.len() >= n {
            return Ok(found);
        }
        anyhow::ensure!(Instant::now() < deadline, "not {n} {state} deliveries: {}", r.text);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_javascript_notifier_posts_each_event_to_the_chat_webhook() -> Result<()> {
    let sink = Receiver::start(|_| 200, Duration::ZERO)?;
    let s = Server::start_with(&greenlight_tests::fast_delivery("3"))?;
    let installed = s.install_plugin("notify-chat")?;
    assert_eq!(installed["world"], "notifier", "{installed}");
    let admin = tenant_with_chat(
        &s,
        &sink.origin,
        json!({"dashboard_url": "https://greenlight.example.com/", "events": ["order_approved"]}),
    )?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    // 3 × 41,150.05 EUR: the total as people read it, thousands grouped.
    let id = alice.order(order_body(3, 4_115_005))?;
    assert_eq!(alice.submit(&id)?.body["status"], "approved");
    // Both events are delivered to the channel; the `events` filter lets one through.
    let delivered = deliveries(&admin, "delivered", 2)?;
    let got = sink.received();
    assert_eq!(got.len(), 1, "only order_approved is posted: {:?}", got.iter().map(|r| r.json()).collect::<Vec<_>>());
    let mut titles = Vec::new();
    for r in &got {
        assert_eq!(r.request_line, "POST /services/T000/B000/XXXX HTTP/1.1");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json();
        let blocks = body["blocks"].as_array().cloned().unwrap_or_default();
        let title = blocks[0]["text"]["text"].as_str().unwrap_or_default().to_string();
        assert_eq!(blocks[0]["type"], "header", "{body}");
        assert_eq!(
            body["text"],
            format!("{title}: {id}, 123,450.15 EUR, requested by alice"),
            "the plain text for notifications: {body}"
        );
        let fields: Vec<&str> =
            blocks[1]["fields"].as_array().into_iter().flatten().filter_map(|f| f["text"].as_str()).collect();
        assert_eq!(
            fields[..3],
            [
                format!("*Order*\n<https://greenlight.example.com/orders/{id}|{id}>").as_str(),
                "*Total*\n123,450.15 EUR",
                "*Requester*\nalice",
            ],
            "{body}"
        );
        // The delivery id, the same in the header and the message, is the one the host lists.
        let delivery = r.header("x-greenlight-delivery").unwrap_or_default();
        assert!(!delivery.is_empty());
        let context = blocks.last().map(|b| b["elements"][0]["text"].clone()).unwrap_or_default();
        assert_eq!(context, format!("Greenlight delivery {delivery}"), "{body}");
        titles.push(title);
    }
    assert_eq!(titles, ["Order approved"]);
    let approved = delivered.iter().find(|d| d["event"] == "order_approved").cloned().unwrap_or_default();
    assert_eq!(got[0].header("x-greenlight-delivery"), approved["id"].as_str(), "the delivery the host lists");
    Ok(())
}

#[test]
fn a_refusal_is_dead_at_once_and_an_outage_is_retried() -> Result<()> {
    // The chat service answers 404 (a deleted webhook) to the first message and 503 to the rest.
    let sink = Receiver::start(|n| if n == 0 { 404 } else { 503 }, Duration::ZERO)?;
    let s = Server::start_with(&greenlight_tests::fast_delivery("3"))?;
    let admin = tenant_with_chat(&s, &sink.origin, json!({"events": ["order_approved", "order_rejected"]}))?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let first = alice.order(order_body(1, 1_000))?;
    alice.submit(&first)?;
    let dead = deliveries(&admin, "dead", 1)?;
    assert_eq!(dead[0]["attempts"], 1, "a refusal is not retried: {}", dead[0]);
    let reason = dead[0]["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains("refused the message with 404") && reason.contains("check its url"), "{reason}");
    let second = alice.order(order_body(1, 1_000))?;
    alice.submit(&second)?;
    let dead = deliveries(&admin, "dead", 2)?;
    let retried = dead.iter().find(|d| d["attempts"] == 3).cloned().unwrap_or_default();
    let reason = retried["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains("gave up after 3 attempts") && reason.contains("503"), "{retried}");
    // A chat service that is down: the host's own reason reaches the delivery.
    let down = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let origin = format!("http://127.0.0.1:{down}");
    let r = admin.put(
        "/v1/admin/extensions/notify-chat",
        json!({"enabled": true, "config": {"url": format!("{origin}/hook"), "events": ["order_approved"]}, "grants": {"http": [origin]}}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text);
    let third = alice.order(order_body(1, 1_000))?;
    alice.submit(&third)?;
    let dead = deliveries(&admin, "dead", 3)?;
    let unreachable = dead.iter().find(|d| d["order_id"] == third.as_str()).cloned().unwrap_or_default();
    let reason = unreachable["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains("could not be reached (failed: "), "the host's http-error, read: {unreachable}");
    Ok(())
}

#[test]
fn a_javascript_notifier_importing_what_its_world_does_not_allow_is_refused_at_install() -> Result<()> {
    let s = Server::start()?;
    let manifest = plugins().join("tp-js-overreach").join("manifest.toml");
    let (code, out, err) = cli(&s.db, &["plugin", "install", &manifest.to_string_lossy()])?;
    assert_ne!(code, 0, "installed: {out}");
    assert!(
        err.contains("greenlight:plugin/records@1.1.0") && err.contains("`notifier` plugins may not use"),
        "the refusal names the interface: {err}"
    );
    let (_, list, _) = cli(&s.db, &["plugin", "list"])?;
    assert!(!list.contains("tp-js-overreach"), "nothing installed: {list}");
    Ok(())
}
