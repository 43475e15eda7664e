//! The HTTP contract as a client relies on it, against the real binary: every 201 carries a
//! `Location` that reads the created resource back, and errors come in the one documented shape.

use anyhow::{Context, Result, ensure};
use greenlight_tests::{Client, Server, order_body};
use serde_json::{Value, json};

/// POSTs and returns the `Location` of the 201, with the body.
fn created(agent: &ureq::Agent, url: &str, token: &str, body: Vec<u8>, json: bool) -> Result<(String, Value)> {
    let mut req = agent.post(url).header("Authorization", format!("Bearer {token}"));
    if json {
        req = req.header("Content-Type", "application/json");
    }
    let mut r = req.send(&body[..])?;
    let text = r.body_mut().read_to_string()?;
    ensure!(r.status().as_u16() == 201, "{url}: {} {text}", r.status());
    let location = r.headers().get("location").context("a Location")?.to_str()?.to_string();
    ensure!(location.starts_with("/v1/"), "{location}");
    Ok((location, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[test]
fn every_201_carries_a_location_that_reads_the_resource_back() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let bob = admin.user("bob", &["approver"], json!({}))?;
    let agent = Client::agent(None);
    let post = |path: &str, token: &str, body: Value| {
        created(&agent, &format!("{}{path}", s.url), token, body.to_string().into_bytes(), true)
    };
    let read = |client: &Client, location: &str| -> Result<Value> {
        let r = client.get(location)?;
        ensure!(r.status == 200, "GET {location}: {} {}", r.status, r.text);
        Ok(r.body)
    };

    let (at, order) = post("/v1/orders", &admin.token, order_body(1, 700))?;
    ensure!(read(&admin, &at)?["id"] == order["id"], "{at}");
    let (at, _) = post("/v1/admin/users", &admin.token, json!({"name": "mia.k@acme", "roles": ["auditor"]}))?;
    ensure!(at == "/v1/admin/users/mia.k@acme" && read(&admin, &at)?["roles"] == json!(["auditor"]), "{at}");
    let (at, _) = post("/v1/admin/users/bob/tokens", &admin.token, json!({}))?;
    ensure!(read(&admin, &at)?["tokens"] == 2, "bob's user shows his new token: {at}");
    let (at, cc) = post("/v1/admin/cost-centers", &admin.token, json!({"code": "CC-9.1", "manager": "bob"}))?;
    ensure!(at == "/v1/admin/cost-centers/CC-9.1", "{at}");
    ensure!(read(&admin, &at)? == cc, "{at}");
    let source = "fn evaluate(ctx) { #{} }";
    let (at, _) = post("/v1/admin/scripts", &admin.token, json!({"name": "noop", "source": source}))?;
    ensure!(read(&admin, &at)?["name"] == "noop", "{at}");
    let until = (chrono::Utc::now() + chrono::TimeDelta::days(3)).to_rfc3339();
    let (at, d) = post("/v1/delegations", &bob.token, json!({"delegate": "mia.k@acme", "until": until}))?;
    ensure!(read(&bob, &at)?["id"] == d["id"], "{at}");
    let id = order["id"].as_str().unwrap_or_default();
    let url = format!("{}/v1/orders/{id}/attachments?filename=quote.txt", s.url);
    let (at, a) = created(&agent, &url, &admin.token, b"a quote".to_vec(), false)?;
    let r = admin.download(&at)?;
    ensure!(r.status == 200 && r.body == b"a quote" && at.ends_with(a["sha256"].as_str().unwrap_or("?")), "{at}");

    // What is not there is a 404 in the error shape, for each of the new reads.
    for path in
        ["/v1/admin/users/nobody", "/v1/admin/cost-centers/CC-0", "/v1/admin/extensions/none", "/v1/delegations/x"]
    {
        let r = admin.get(path)?;
        ensure!(r.status == 404 && r.body["error"]["code"] == "not_found", "{path}: {}", r.text);
        ensure!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}");
    }
    // Who may not read them is told so.
    ensure!(bob.get("/v1/admin/users/bob")?.status == 403);
    ensure!(bob.get("/v1/admin/cost-centers/CC-9.1")?.status == 403);
    Ok(())
}
