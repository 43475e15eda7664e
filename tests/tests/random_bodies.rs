//! Random input to every operation of the API, as the server describes it at `/v1/openapi.json`:
//! random JSON (of any shape, and objects built from the API's own field names with values of
//! the wrong kind), random bytes, random query strings and random path segments, sent with the
//! tokens of several roles. Whatever arrives, the server answers: never a 5xx, never a dropped
//! connection, and (checked by the harness when the server stops) never a panic in its log.

use anyhow::{Context, Result};
use greenlight_tests::{Client, Server, order_body};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// One operation of the OpenAPI document.
#[derive(Debug, Clone)]
struct Operation {
    method: String,
    path: String,
    query: Vec<String>,
}

/// Every operation, and every property name any schema of the document has.
fn operations(doc: &Value) -> (Vec<Operation>, Vec<String>) {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            ops.push(Operation { method: method.to_uppercase(), path: path.clone(), query });
        }
    }
    let mut names = BTreeSet::new();
    fn walk(v: &Value, names: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(props) = m.get("properties").and_then(Value::as_object) {
                    names.extend(props.keys().cloned());
                }
                m.values().for_each(|v| walk(v, names));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, names)),
            _ => {}
        }
    }
    walk(doc, &mut names);
    (ops, names.into_iter().collect())
}

/// JSON of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(0), Just(-1), Just(1_000_000_000_000_000)]
            .prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        prop_oneof![Just("EUR"), Just("P1M"), Just("2026-12-01"), Just("approve"), Just("../../etc"), Just("")]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What to send as the body.
#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Bytes(Vec<u8>),
}

/// A request of a random kind to operation `op` (an index), as one of the clients.
#[derive(Debug, Clone)]
struct Case {
    op: usize,
    client: usize,
    body: Body,
    query: Vec<(usize, String)>,
    segment: Option<String>,
}

fn case(ops: usize, names: Vec<String>) -> impl Strategy<Value = Case> {
    let n = names.len().max(1);
    let named_object = prop::collection::vec((0..n, any_json()), 0..8).prop_map(move |kv| {
        Value::Object(kv.into_iter().map(|(i, v)| (names.get(i).cloned().unwrap_or_default(), v)).collect())
    });
    let body = prop_oneof![
        Just(Body::None),
        any_json().prop_map(Body::Json),
        named_object.prop_map(Body::Json),
        prop::collection::vec(any::<u8>(), 0..512).prop_map(Body::Bytes),
    ];
    let value = prop_oneof!["\\PC{0,16}", "-?[0-9]{1,25}", Just("null".to_string()), Just("%FF%00".to_string())];
    let query = prop::collection::vec((0usize..8, value), 0..4);
    let segment = prop::option::of(prop_oneof!["[a-zA-Z0-9._~-]{1,70}", Just("%2e%2e".to_string())]);
    (0..ops, 0usize..4, body, query, segment).prop_map(|(op, client, body, query, segment)| Case {
        op,
        client,
        body,
        query,
        segment,
    })
}

/// The path with its parameters filled in: an existing order, a user the requests may change
/// (not one whose token sends them), or `segment`.
fn fill(path: &str, order: &str, segment: &Option<String>) -> String {
    let mut out = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        out.push('/');
        if part.starts_with('{') {
            let known = match part {
                "{id}" | "{order_id}" => order,
                "{name}" => "zed",
                _ => "x",
            };
            out.push_str(segment.as_deref().unwrap_or(known));
        } else {
            out.push_str(part);
        }
    }
    out
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'%' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn random_bodies_queries_and_paths_never_get_a_5xx_or_a_dropped_connection() -> Result<()> {
    let s = Server::start()?;
    let admin = s.tenant("acme")?;
    let alice = admin.user("alice", &["requester"], json!({}))?;
    let bob = admin.user("bob", &["approver", "cost_center_manager"], json!({}))?;
    let dave = admin.user("dave", &["auditor"], json!({}))?;
    admin.user("zed", &["requester"], json!({}))?;
    let order = alice.order(order_body(2, 1_500))?;
    alice.submit(&alice.order(order_body(1, 900))?)?;
    let clients = [admin, alice, bob, dave];

    let doc = clients[0].get("/v1/openapi.json")?.body;
    let (ops, names) = operations(&doc);
    anyhow::ensure!(ops.len() >= 40, "the document lists the API's operations: {}", ops.len());
    let agent = Client::agent(None);
    let mut runner = TestRunner::new(Config { cases: 3_000, failure_persistence: None, ..Config::default() });
    let seen = std::cell::RefCell::new(BTreeSet::new());
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::new());
    runner
        .run(&case(ops.len(), names), |c| {
            let op = &ops[c.op];
            let mut url = format!("{}{}", s.url, fill(&op.path, &order, &c.segment));
            let pairs: Vec<String> = c
                .query
                .iter()
                .map(|(i, v)| {
                    let key = op.query.get(*i).cloned().unwrap_or_else(|| format!("k{i}"));
                    format!("{}={}", percent(&key), percent(v))
                })
                .collect();
            if !pairs.is_empty() {
                url = format!("{url}?{}", pairs.join("&"));
            }
            let builder = ureq::http::Request::builder()
                .method(op.method.as_str())
                .uri(&url)
                .header("Authorization", format!("Bearer {}", clients[c.client].token));
            let (builder, bytes) = match &c.body {
                Body::None => (builder, Vec::new()),
                Body::Json(v) => (builder.header("Content-Type", "application/json"), v.to_string().into_bytes()),
                Body::Bytes(b) => (builder.header("Content-Type", "application/octet-stream"), b.clone()),
            };
            let request = builder.body(bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            let mut response = agent
                .run(request)
                .map_err(|e| TestCaseError::fail(format!("{} {url}: no answer ({e}) for {c:?}", op.method)))?;
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            prop_assert!(status < 500, "{} {url}: {status} {text} for {c:?}", op.method);
            seen.borrow_mut().insert((op.method.clone(), op.path.clone()));
            *statuses.borrow_mut().entry(status).or_insert(0usize) += 1;
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("random input")?;
    let statuses = statuses.into_inner();
    eprintln!("answers by status: {statuses:?}");
    let count = |f: &dyn Fn(u16) -> bool| statuses.iter().filter(|(s, _)| f(**s)).map(|(_, n)| n).sum::<usize>();
    // The input reached the handlers: some of it was even accepted, and the tokens kept working.
    anyhow::ensure!(count(&|s| (200..300).contains(&s)) >= 50, "{statuses:?}");
    anyhow::ensure!(count(&|s| s == 401) * 20 < 3_000, "{statuses:?}");
    let tried = seen.borrow().len();
    anyhow::ensure!(tried * 10 >= ops.len() * 9, "most operations were tried: {tried} of {}", ops.len());
    Ok(())
}
