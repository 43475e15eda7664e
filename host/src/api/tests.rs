//! The router without a socket (`tower::ServiceExt::oneshot`): error shapes, limits, auth.
//! The end-to-end behaviour is tested against the real binary in `tests/`.

use super::*;
use crate::runtime::Runtimes;
use crate::store::{Store, StoreOptions};
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    admin: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path().join("api.db"), StoreOptions::default()).expect("store");
    let approvals = Approvals::new(store, Runtimes::new().expect("runtimes"));
    let (_, admin) = approvals.create_tenant("acme").await.expect("tenant");
    Fixture { _dir: dir, app: app(approvals), admin }
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app.clone().oneshot(req.body(body.into()).expect("request")).await.expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn health_and_openapi_answer() {
    let f = fixture().await;
    let (s, _) = call(&f.app, "GET", "/healthz", None, Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    let (s, doc) = call(&f.app, "GET", "/v1/openapi.json", None, Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    for path in ["/v1/orders", "/v1/orders/{id}/decisions", "/v1/inbox", "/v1/admin/users", "/v1/audit/verify"] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    // Request bodies keep their names in the contract although they live in the API layer.
    for name in ["NewUser", "NewCostCenter", "ExtensionUpdate", "SettingsUpdate"] {
        assert!(doc["components"]["schemas"][name].is_object(), "{name} missing from the OpenAPI document");
    }
    // The largest amount an order may carry is part of the contract.
    let price = &doc["components"]["schemas"]["Line"]["properties"]["unit_price_minor"];
    assert_eq!(price["maximum"].as_f64(), Some(1e15), "{price}");
}

#[tokio::test]
async fn every_operation_documents_its_errors_and_every_201_its_location() {
    let f = fixture().await;
    let (_, doc) = call(&f.app, "GET", "/v1/openapi.json", None, Body::empty()).await;
    assert_eq!(doc["components"]["schemas"]["Error"]["required"], serde_json::json!(["error"]));
    let mut created = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let responses = &op["responses"];
            let mut must = vec!["401", "403", "503"];
            if path.contains('{') {
                must.extend(["404", "422"]);
            }
            if op["requestBody"].is_object() {
                must.extend(["400", "413", "422"]);
            }
            if method != "get" {
                must.push("409");
            }
            for status in must {
                let schema = &responses[status]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/Error", "{method} {path} {status}");
            }
            if responses["201"].is_object() {
                created += 1;
                assert!(responses["201"]["headers"]["Location"].is_object(), "{method} {path}");
            }
        }
    }
    assert_eq!(created, 7, "orders, users, tokens, cost centers, scripts, delegations, attachments");
    // And the server keeps it: the Location of a new order reads it back.
    let body = r#"{"currency":"EUR","lines":[{"sku":"A","quantity":1,"unit_price_minor":100}]}"#;
    let req = Request::builder()
        .method("POST")
        .uri("/v1/orders")
        .header("authorization", format!("Bearer {}", f.admin))
        .body(Body::from(body))
        .expect("request");
    let resp = f.app.clone().oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().expect("ascii").to_string();
    let (s, order) = call(&f.app, "GET", &location, Some(&f.admin), Body::empty()).await;
    assert_eq!((s, location.ends_with(order["id"].as_str().unwrap_or("?"))), (StatusCode::OK, true), "{location}");
}

#[tokio::test]
async fn a_number_with_a_zero_fraction_is_the_integer_it_equals_and_query_parameters_are_in_the_query() {
    let f = fixture().await;
    let order = |price: &str| {
        format!(r#"{{"currency":"EUR","lines":[{{"sku":"A","quantity":2.0,"unit_price_minor":{price}}}]}}"#)
    };
    let (s, body) = call(&f.app, "POST", "/v1/orders", Some(&f.admin), order("150.0")).await;
    assert_eq!((s, body["subtotal_minor"].as_i64()), (StatusCode::CREATED, Some(300)), "{body}");
    let (s, body) = call(&f.app, "POST", "/v1/orders", Some(&f.admin), order("150.5")).await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("lines[0].unit_price_minor"))
    );
    let (s, body) = call(&f.app, "POST", "/v1/orders", Some(&f.admin), order("1e300")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // The same rule everywhere, attributes included, as far as a float holds the integer exactly.
    let with = |attrs: &str| {
        format!(
            r#"{{"currency":"EUR","attributes":{attrs},"lines":[{{"sku":"A","quantity":1,"unit_price_minor":1}}]}}"#
        )
    };
    let (s, body) = call(&f.app, "POST", "/v1/orders", Some(&f.admin), with(r#"{"seats":3.0}"#)).await;
    assert_eq!((s, &body["attributes"]), (StatusCode::CREATED, &serde_json::json!({"seats": 3})), "{body}");
    for refused in [r#"{"big":12345678901234567.0}"#, r#"{"half":0.5}"#] {
        let (s, body) = call(&f.app, "POST", "/v1/orders", Some(&f.admin), with(refused)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{refused}: {body}");
    }
    // A key given twice is refused, not read as the last one.
    let twice = r#"{"currency":"EUR","currency":"USD","lines":[{"sku":"A","quantity":1.0,"unit_price_minor":1}]}"#;
    let (s, body) = call(&f.app, "POST", "/v1/orders", Some(&f.admin), twice).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("`currency` is given twice")), "{body}");
    let (_, doc) = call(&f.app, "GET", "/v1/openapi.json", None, Body::empty()).await;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for op in item.as_object().expect("operations").values() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default();
                let in_path = path.contains(&format!("{{{name}}}"));
                assert_eq!(p["in"], if in_path { "path" } else { "query" }, "{path} {name}");
            }
        }
    }
    let (s, body) = call(&f.app, "POST", "/v1/orders/x/evaluations/-1/replay", Some(&f.admin), Body::empty()).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("n")), "{body}");
}

#[tokio::test]
async fn missing_or_bad_tokens_are_401() {
    let f = fixture().await;
    let (s, v) = call(&f.app, "GET", "/v1/inbox", None, Body::empty()).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, _) = call(&f.app, "GET", "/v1/inbox", Some("glt_nope"), Body::empty()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bodies_are_checked_malformed_400_invalid_422_large_413() {
    let f = fixture().await;
    let t = Some(f.admin.as_str());
    let (s, v) = call(&f.app, "POST", "/v1/orders", t, "{\"currency\":").await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "malformed_json"));
    let (s, v) = call(
        &f.app,
        "POST",
        "/v1/orders",
        t,
        r#"{"currency":"EUR","lines":[{"sku":"a","quantity":1,"unit_price_minor":1}],"nope":1}"#,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
    assert!(v["error"]["message"].as_str().unwrap_or("").contains("nope"));
    let (s, v) = call(
        &f.app,
        "POST",
        "/v1/orders",
        t,
        r#"{"currency":"EUR","lines":[{"sku":"a","quantity":"1","unit_price_minor":1}]}"#,
    )
    .await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("lines[0].quantity")));
    let big = format!(r#"{{"currency":"EUR","lines":[],"attributes":{{"x":"{}"}}}}"#, "a".repeat(BODY_LIMIT + 10));
    let (s, v) = call(&f.app, "POST", "/v1/orders", t, big).await;
    assert_eq!((s, code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_format() {
    let f = fixture().await;
    let (s, v) = call(&f.app, "GET", "/v1/nothing", Some(&f.admin), Body::empty()).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = call(&f.app, "DELETE", "/v1/orders", Some(&f.admin), Body::empty()).await;
    assert_eq!((s, code(&v)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let (s, v) = call(&f.app, "GET", "/v1/orders?limit=abc", Some(&f.admin), Body::empty()).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
}

#[tokio::test]
async fn a_script_that_does_not_compile_is_422_with_line_and_column() {
    let f = fixture().await;
    let body = serde_json::json!({"name": "broken", "source": "fn evaluate(ctx) {\n  let = 1;\n}"}).to_string();
    let (s, v) = call(&f.app, "POST", "/v1/admin/scripts", Some(&f.admin), body).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "script_does_not_compile"));
    assert_eq!(v["error"]["line"], 2);
    assert!(v["error"]["column"].as_u64().unwrap_or(0) > 0);
}

#[tokio::test]
async fn metrics_expose_requests_but_nothing_of_any_tenant() {
    let f = fixture().await;
    let body = r#"{"currency":"EUR","lines":[{"sku":"a","quantity":1,"unit_price_minor":1}]}"#;
    let (s, _) = call(&f.app, "POST", "/v1/orders", Some(&f.admin), body).await;
    assert_eq!(s, StatusCode::CREATED);
    let resp = f.app.clone().oneshot(Request::get("/metrics").body(Body::empty()).expect("req")).await.expect("resp");
    let text = String::from_utf8(axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body").to_vec())
        .expect("utf8");
    assert!(
        text.contains("greenlight_http_requests_total{method=\"POST\",route=\"/v1/orders\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(!text.contains("greenlight_orders") && !text.contains("acme"), "no business figures: {text}");
    assert!(text.contains("greenlight_step_failures_total 0"));
    // The order's creation went through the writer: counted, with its busy time.
    let counter = |name: &str| -> f64 {
        text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(-1.0)
    };
    assert!(counter("greenlight_writer_changes_total ") >= 1.0, "{text}");
    assert!(counter("greenlight_writer_commits_total ") >= 1.0, "{text}");
    assert!(counter("greenlight_writer_busy_seconds_total ") > 0.0, "{text}");
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn a_panic_answers_500_with_an_error_id_and_never_leaks_its_message() {
    let resp = handler_panicked(Box::new("secret detail: index out of bounds"));
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body["error"]["code"], "internal_error");
    let id = body["error"]["error_id"].as_str().expect("an error id");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(id)));
    assert!(!String::from_utf8_lossy(&bytes).contains("secret detail"));
}

#[tokio::test]
async fn trailing_bytes_after_a_json_body_are_a_400() {
    let f = fixture().await;
    let body = r#"{"name":"u1","roles":["requester"]}garbage"#;
    let (status, v) = call(&f.app, "POST", "/v1/admin/users", Some(&f.admin), body).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_json")), "{v}");
}
