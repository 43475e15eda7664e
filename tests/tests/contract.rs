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

/// Sends raw HTTP/1.1 on `stream` and reads one answer's head; its status and whether it closes.
fn exchange(stream: &mut std::net::TcpStream, head: &str, body: &[u8]) -> Result<(u16, bool)> {
    use std::io::{BufRead, Read, Write};
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reader = std::io::BufReader::new(stream.try_clone()?);
    let (mut status, mut close, mut length) = (0u16, false, 0usize);
    loop {
        let mut line = String::new();
        ensure!(reader.read_line(&mut line)? > 0, "the connection was dropped");
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(s) = line.strip_prefix("http/1.1 ") {
            status = s.get(..3).unwrap_or_default().parse()?;
        }
        close |= line == "connection: close";
        if let Some(n) = line.strip_prefix("content-length: ") {
            length = n.parse()?;
        }
    }
    reader.read_exact(&mut vec![0; length])?;
    Ok((status, close))
}

#[test]
fn a_request_refused_before_its_body_was_read_leaves_the_connection_usable() -> Result<()> {
    let s = Server::start()?;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    // A bad token is refused before the body is read; the body is read anyway, and the
    // connection serves the next request.
    let body = vec![b'x'; 300_000];
    let head = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer glt_bad\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    ensure!(exchange(&mut stream, &head, &body)? == (401, false));
    let next = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    ensure!(exchange(&mut stream, &next, b"")? == (200, false), "the same connection answers again");
    Ok(())
}
