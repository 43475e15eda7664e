//! Every page at the router level, without a socket: who sees what, the sign-in and its
//! cookie, the form token, and the answers to bad input. The browser tests in `tests/` drive the
//! real binary in Chromium.

use super::*;
use crate::approvals::NewUser;
use crate::domain::directory::Principal;
use crate::domain::order::{Line, OrderInput};
use crate::runtime::Runtimes;
use crate::store::{Store, StoreOptions};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery";

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    approvals: Approvals,
    alice: Principal,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path().join("web.db"), StoreOptions::default()).expect("store");
    let approvals = Approvals::new(store, Runtimes::new().expect("runtimes"));
    let (_, token) = approvals.create_tenant("acme").await.expect("tenant");
    let admin = approvals.authenticate(&token).await.expect("auth").expect("admin");
    approvals.set_password(&admin, "admin", PASSWORD).await.expect("password");
    let mut alice = None;
    for (name, roles) in [("alice", vec!["requester"]), ("carol", vec!["approver"]), ("grace", vec!["auditor"])] {
        let roles = roles.iter().map(|r| r.parse().expect("role")).collect();
        let (_, token) = approvals.create_user(&admin, NewUser::with_roles(name, roles)).await.expect("user");
        approvals.set_password(&admin, name, PASSWORD).await.expect("password");
        if name == "alice" {
            alice = approvals.authenticate(&token).await.expect("auth");
        }
    }
    let web = WebState { approvals: approvals.clone(), secure_cookies: true };
    Fixture { _dir: dir, app: app(web), approvals, alice: alice.expect("alice") }
}

struct Reply {
    status: StatusCode,
    location: String,
    cookie: String,
    text: String,
}

async fn send(app: &Router, method: &str, uri: &str, cookie: Option<&str>, form: Option<String>) -> Reply {
    let mut req = Request::builder().method(method).uri(uri).header("host", "greenlight.test");
    if let Some(c) = cookie {
        req = req.header("cookie", format!("gl_session={c}"));
    }
    let body = match form {
        Some(f) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Body::from(f)
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).expect("request")).await.expect("response");
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (status, location, cookie) = (resp.status(), header("location"), header("set-cookie"));
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    Reply { status, location, cookie, text: String::from_utf8_lossy(&bytes).into_owned() }
}

fn form_token(page: &str) -> Option<String> {
    page.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).map(str::to_string)
}

/// Sets up a second factor through the security page, as a person does: the secret the page
/// shows, the code of this moment. The session counts as stepped up afterwards.
async fn enroll(app: &Router, cookie: &str) {
    use crate::domain::second_factor::{code, from_base32, step_of};
    let page = send(app, "GET", "/security", Some(cookie), None).await;
    let csrf = form_token(&page.text).expect("a form token");
    let setup = send(app, "POST", "/security/setup", Some(cookie), Some(format!("csrf={csrf}"))).await;
    let secret =
        setup.text.split("<code id=\"totp-secret\">").nth(1).and_then(|s| s.split('<').next()).expect("secret");
    let typed = format!("{:06}", code(&from_base32(secret).expect("base32"), step_of(chrono::Utc::now().timestamp())));
    let done = send(app, "POST", "/security/confirm", Some(cookie), Some(format!("csrf={csrf}&code={typed}"))).await;
    assert!(done.text.contains("Two-step verification is on"), "{}", done.text);
}

/// Signs in (setting up the second factor first when the user's role requires one) and returns
/// the cookie value and the form token of the inbox page.
async fn sign_in(app: &Router, tenant: &str, name: &str) -> (String, String) {
    let r = send(
        app,
        "POST",
        "/sign-in",
        None,
        Some(format!("tenant={tenant}&name={name}&password=correct+horse+battery")),
    )
    .await;
    assert_eq!((r.status, r.location.as_str()), (StatusCode::SEE_OTHER, "/inbox"), "{}", r.text);
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(r.cookie.contains(attr), "{attr} missing from {}", r.cookie);
    }
    let value = r.cookie.split(';').next().and_then(|c| c.strip_prefix("gl_session=")).expect("cookie").to_string();
    let mut inbox = send(app, "GET", "/inbox", Some(&value), None).await;
    if inbox.location == "/security?required=1" {
        enroll(app, &value).await;
        inbox = send(app, "GET", "/inbox", Some(&value), None).await;
    }
    let csrf = form_token(&inbox.text).expect("token");
    (value, csrf)
}

fn order_input() -> OrderInput {
    let mut input = crate::domain::fixtures::input(vec![Line {
        description: Some("Laptop <b>14</b>".into()),
        ..crate::domain::fixtures::line(2, 120_000)
    }]);
    input.cost_center = None;
    input
}

#[tokio::test]
async fn every_page_answers_the_signed_in_user_and_sends_strangers_to_sign_in() {
    let f = fixture().await;
    for page in
        ["/inbox", "/orders", "/orders/new", "/audit", "/reports", "/admin/extensions", "/admin/users", "/password"]
    {
        let r = send(&f.app, "GET", page, None, None).await;
        assert_eq!((r.status, r.location.as_str()), (StatusCode::SEE_OTHER, "/sign-in"), "{page}");
    }
    let (admin, _) = sign_in(&f.app, "acme", "admin").await;
    for page in [
        "/inbox",
        "/orders",
        "/orders/new",
        "/audit",
        "/reports",
        "/admin/extensions",
        "/admin/users",
        "/password",
        "/reports.csv",
    ] {
        let r = send(&f.app, "GET", page, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{page}: {}", r.text);
    }
    let r = send(&f.app, "GET", "/sign-in", None, None).await;
    assert!(r.text.contains("<label for=\"password\">"), "{}", r.text);
    let css = send(&f.app, "GET", "/assets/greenlight.css", None, None).await;
    assert_eq!(css.status, StatusCode::OK);
}

#[tokio::test]
async fn pages_show_only_what_the_api_would_show_that_user() {
    let f = fixture().await;
    let alice = f.alice.clone();
    let order = f.approvals.create_order(&alice, order_input()).await.expect("order");
    let (carol, _) = sign_in(&f.app, "acme", "carol").await;
    let r = send(&f.app, "GET", &format!("/orders/{}", order.id), Some(&carol), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("2,400.00 EUR"), "the total in its currency");
    assert!(r.text.contains("Laptop &#60;b&#62;14&#60;/b&#62;"), "text is escaped: {}", r.text);
    // Roles gate the oversight and admin pages.
    assert_eq!(send(&f.app, "GET", "/admin/extensions", Some(&carol), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send(&f.app, "GET", "/reports", Some(&carol), None).await.status, StatusCode::FORBIDDEN);
    let (grace, _) = sign_in(&f.app, "acme", "grace").await;
    assert_eq!(send(&f.app, "GET", "/reports", Some(&grace), None).await.status, StatusCode::OK);
    // Another tenant's user gets the same 404 page as for an order that does not exist.
    let (_, token) = f.approvals.create_tenant("globex").await.expect("tenant");
    let other = f.approvals.authenticate(&token).await.expect("auth").expect("admin");
    f.approvals.set_password(&other, "admin", PASSWORD).await.expect("password");
    let (mallory, _) = sign_in(&f.app, "globex", "admin").await;
    let theirs = send(&f.app, "GET", &format!("/orders/{}", order.id), Some(&mallory), None).await;
    let none = send(&f.app, "GET", "/orders/01a00000-0000-7000-8000-000000000000", Some(&mallory), None).await;
    assert_eq!((theirs.status, none.status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert!(theirs.text.contains("<h1>Not found</h1>"));
    assert!(!theirs.text.contains("Laptop"));
}

#[tokio::test]
async fn forms_need_the_session_token_and_a_rejection_needs_a_reason() {
    let f = fixture().await;
    let alice = f.alice.clone();
    let order = f.approvals.create_order(&alice, order_input()).await.expect("order");
    let (cookie, csrf) = sign_in(&f.app, "acme", "alice").await;
    let submit = format!("/orders/{}/submit", order.id);
    let r = send(&f.app, "POST", &submit, Some(&cookie), Some("csrf=forged".into())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        f.approvals.order(&alice, &order.id).await.expect("order").status,
        crate::domain::order::OrderStatus::Draft
    );
    let r = send(&f.app, "POST", &submit, Some(&cookie), Some(format!("csrf={csrf}"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);

    let (admin, admin_csrf) = sign_in(&f.app, "acme", "admin").await;
    let decide = format!("/orders/{}/decide", order.id);
    // An order with no rule is approved on submit; a rejection of a decided order is refused,
    // and without a reason it never reaches the use case.
    let r = send(
        &f.app,
        "POST",
        &decide,
        Some(&admin),
        Some(format!("csrf={admin_csrf}&stage=x&decision=reject&comment=")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("give a reason for the rejection"), "{}", r.text);
    assert!(r.text.contains("aria-invalid=\"true\""));

    // A new order with a bad line comes back with the message at the line.
    let form = format!("csrf={csrf}&currency=EUR&sku=A&description=&quantity=0&unit_price=1&budget_category=");
    let r = send(&f.app, "POST", "/orders", Some(&cookie), Some(form)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Line 1: the quantity must be a whole number above 0"), "{}", r.text);

    // Signing out ends the session.
    let r = send(&f.app, "POST", "/sign-out", Some(&cookie), Some(format!("csrf={csrf}"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(send(&f.app, "GET", "/inbox", Some(&cookie), None).await.location, "/sign-in");
}

#[tokio::test]
async fn wrong_passwords_are_one_answer_and_repeated_ones_slow_down() {
    let f = fixture().await;
    let bad = |name: &str| format!("tenant=acme&name={name}&password=not+the+password");
    let wrong_user = send(&f.app, "POST", "/sign-in", None, Some(bad("nobody"))).await;
    let wrong_password = send(&f.app, "POST", "/sign-in", None, Some(bad("carol"))).await;
    assert_eq!((wrong_user.status, wrong_password.status), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert!(wrong_password.text.contains("the tenant, name or password is wrong"));
    for _ in 0..2 {
        send(&f.app, "POST", "/sign-in", None, Some(bad("carol"))).await;
    }
    let r = send(&f.app, "POST", "/sign-in", None, Some(bad("carol"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.text.contains("wait"));
    // A form posted from another site is refused before any password is checked.
    let req = Request::builder()
        .method("POST")
        .uri("/sign-in")
        .header("host", "greenlight.test")
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("tenant=acme&name=grace&password=correct+horse+battery"))
        .expect("request");
    assert_eq!(f.app.clone().oneshot(req).await.expect("response").status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let f = fixture().await;
    let req = Request::builder().uri("/sign-in").body(Body::empty()).expect("request");
    let resp = f.app.clone().oneshot(req).await.expect("response");
    let csp = resp.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(resp.headers().get("x-frame-options").and_then(|v| v.to_str().ok()), Some("DENY"));
}

#[tokio::test]
async fn changing_ones_password_needs_the_current_one_and_ends_the_session() {
    let f = fixture().await;
    let (cookie, csrf) = sign_in(&f.app, "acme", "carol").await;
    let wrong = format!("csrf={csrf}&current=not+my+password&password=a+brand+new+secret");
    let r = send(&f.app, "POST", "/password", Some(&cookie), Some(wrong)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("the current password is wrong"), "{}", r.text);
    let right = format!("csrf={csrf}&current=correct+horse+battery&password=a+brand+new+secret");
    let r = send(&f.app, "POST", "/password", Some(&cookie), Some(right)).await;
    assert_eq!((r.status, r.location.as_str()), (StatusCode::SEE_OTHER, "/sign-in"));
    assert_eq!(send(&f.app, "GET", "/inbox", Some(&cookie), None).await.location, "/sign-in", "the session ended");
    let again =
        send(&f.app, "POST", "/sign-in", None, Some("tenant=acme&name=carol&password=a+brand+new+secret".into())).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_requester_edits_a_draft_and_an_admin_adds_a_cost_center() {
    let f = fixture().await;
    let order = f.approvals.create_order(&f.alice, order_input()).await.expect("order");
    let (cookie, csrf) = sign_in(&f.app, "acme", "alice").await;
    let page = send(&f.app, "GET", &format!("/orders/{}/edit", order.id), Some(&cookie), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("value=\"1200.00\""), "the unit price in major units: {}", page.text);
    let form = format!(
        "csrf={csrf}&currency=EUR&cost_center=&department=Ops&vendor_id=&recurrence=P1M&sku=A&description=Laptop&quantity=3&unit_price=1200.00&budget_category="
    );
    let r = send(&f.app, "POST", &format!("/orders/{}/edit", order.id), Some(&cookie), Some(form)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let edited = f.approvals.order(&f.alice, &order.id).await.expect("order");
    assert_eq!((edited.input.lines[0].quantity, edited.input.department.as_deref()), (3, Some("Ops")));
    assert_eq!(edited.input.recurrence.map(|r| r.interval).as_deref(), Some("P1M"));

    let (admin, admin_csrf) = sign_in(&f.app, "acme", "admin").await;
    let form = format!("csrf={admin_csrf}&code=CC-7&manager=nobody&budget_minor=");
    let r = send(&f.app, "POST", "/admin/cost-centers", Some(&admin), Some(form)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the manager must exist");
    let form = format!("csrf={admin_csrf}&code=CC-7&manager=carol&budget_minor=1000000");
    let r = send(&f.app, "POST", "/admin/cost-centers", Some(&admin), Some(form)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(send(&f.app, "GET", "/admin/cost-centers", Some(&admin), None).await.text.contains("CC-7"));
    // Settings are a critical action: a later session, which has not confirmed it is them, is
    // refused; the one that just set up the second factor may.
    let (later, later_csrf) = sign_in(&f.app, "acme", "admin").await;
    let r = send(&f.app, "POST", "/admin/settings", Some(&later), Some(format!("csrf={later_csrf}"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("Confirm it is you first") && r.text.contains("href=\"/security\""), "{}", r.text);
    let r = send(&f.app, "POST", "/admin/settings", Some(&admin), Some(format!("csrf={admin_csrf}"))).await;
    assert!(r.text.contains("Saved.") && !r.text.contains(" checked>"), "segregation of duties off: {}", r.text);
}

#[tokio::test]
async fn the_access_page_reviews_users_and_an_admin_disables_one_at_once() {
    let f = fixture().await;
    let (carol, _) = sign_in(&f.app, "acme", "carol").await;
    let (grace, _) = sign_in(&f.app, "acme", "grace").await;
    let r = send(&f.app, "GET", "/access", Some(&grace), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("<td>carol</td>") && !r.text.contains("Disable carol"), "auditors only read: {}", r.text);
    let (alice, _) = sign_in(&f.app, "acme", "alice").await;
    assert_eq!(send(&f.app, "GET", "/access", Some(&alice), None).await.status, StatusCode::FORBIDDEN);

    // Signing in set up the admin's second factor, which also confirmed it is them.
    let (admin, csrf) = sign_in(&f.app, "acme", "admin").await;
    let r = send(&f.app, "GET", "/access", Some(&admin), None).await;
    assert!(r.text.contains("Disable carol") && !r.text.contains("Disable admin"), "{}", r.text);
    let r = send(&f.app, "POST", "/access/carol/disable", Some(&admin), Some("csrf=stale".into())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the form token is checked");
    let r = send(&f.app, "POST", "/access/carol/disable", Some(&admin), Some(format!("csrf={csrf}"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("carol is disabled: 1 token(s) revoked, 1 session(s) and 0 delegation(s) ended"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Enable carol") && r.text.contains("Disabled"), "{}", r.text);
    // Her session ended with it.
    let r = send(&f.app, "GET", "/inbox", Some(&carol), None).await;
    assert_eq!((r.status, r.location.as_str()), (StatusCode::SEE_OTHER, "/sign-in"));
    let r = send(&f.app, "POST", "/access/admin/disable", Some(&admin), Some(format!("csrf={csrf}"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "not oneself");
    assert!(r.text.contains("you cannot disable yourself"), "{}", r.text);
    let csv = send(&f.app, "GET", "/access.csv", Some(&admin), None).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.text.lines().any(|l| l.starts_with("carol,approver,")), "{}", csv.text);

    // A mover: grace the auditor becomes an approver too; a typo is named; the last admin stays.
    let roles = |who: &str, text: &str| (format!("/access/{who}/roles"), format!("csrf={csrf}&roles={text}"));
    let (path, form) = roles("grace", "approver%2C+auditor");
    let r = send(&f.app, "POST", &path, Some(&admin), Some(form)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("grace now holds approver, auditor; 0 delegation(s) ended"), "{}", r.text);
    let (path, form) = roles("grace", "Approver");
    let r = send(&f.app, "POST", &path, Some(&admin), Some(form)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("&#39;Approver&#39; is not a role name"), "{}", r.text);
    let (path, form) = roles("admin", "auditor");
    let r = send(&f.app, "POST", &path, Some(&admin), Some(form)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("admin is the last admin of the tenant"), "{}", r.text);
}

#[tokio::test]
async fn an_admin_sets_up_a_second_factor_before_anything_else_and_a_requester_need_not() {
    let f = fixture().await;
    let form = "tenant=acme&name=admin&password=correct+horse+battery".to_string();
    let r = send(&f.app, "POST", "/sign-in", None, Some(form)).await;
    let admin = r.cookie.split(';').next().and_then(|c| c.strip_prefix("gl_session=")).expect("cookie").to_string();
    for page in ["/inbox", "/admin/extensions", "/access"] {
        let r = send(&f.app, "GET", page, Some(&admin), None).await;
        assert_eq!((r.status, r.location.as_str()), (StatusCode::SEE_OTHER, "/security?required=1"), "{page}");
    }
    let r = send(&f.app, "GET", "/security?required=1", Some(&admin), None).await;
    assert!(r.text.contains("Your role requires two-step verification"), "{}", r.text);
    enroll(&f.app, &admin).await;
    assert_eq!(send(&f.app, "GET", "/inbox", Some(&admin), None).await.status, StatusCode::OK);
    // Requesters are not in the tenant's list (admins only, by default).
    let (alice, _) = sign_in(&f.app, "acme", "alice").await;
    assert_eq!(send(&f.app, "GET", "/inbox", Some(&alice), None).await.status, StatusCode::OK);
}
