//! New and edited orders: the order form with its line rows, read back with the errors at their
//! fields, amounts typed in major units.

use super::WebState;
use super::error::PageError;
use super::orders::some;
use super::session::Viewer;
use super::view::Nav;
use crate::approvals::ApprovalError;
use crate::domain::order::{Line, OrderInput, Recurrence};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

/// A line of the new-order form as typed, kept to show it again with its errors.
#[derive(Debug, Clone, Default)]
struct LineInput {
    sku: String,
    description: String,
    quantity: String,
    unit_price: String,
    budget_category: String,
    error: String,
}

#[derive(Template)]
#[template(path = "order_form.html")]
struct NewOrderPage {
    nav: Nav,
    title: String,
    action: String,
    editing: bool,
    currency: String,
    cost_center: String,
    department: String,
    vendor: String,
    recurrence: String,
    lines: Vec<LineInput>,
    errors: Vec<(String, String)>,
}

impl NewOrderPage {
    /// An empty form posting to `action`.
    fn new(nav: Nav, title: String, action: String, editing: bool) -> NewOrderPage {
        NewOrderPage {
            nav,
            title,
            action,
            editing,
            currency: String::new(),
            cost_center: String::new(),
            department: String::new(),
            vendor: String::new(),
            recurrence: String::new(),
            lines: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The message for a field, or empty.
    fn error(&self, field: &str) -> String {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

/// How many line rows a new form offers.
const BLANK_LINES: usize = 3;
/// The most lines the form takes.
const MAX_FORM_LINES: usize = 100;

/// `GET /orders/new`.
pub async fn new_order(v: Viewer) -> Result<Html<String>, PageError> {
    let mut page = NewOrderPage::new(v.nav("new"), "New order".into(), "/orders".into(), false);
    page.currency = "EUR".into();
    page.lines = vec![LineInput::default(); BLANK_LINES];
    Ok(Html(page.render()?))
}

/// Parses an amount typed in major units (`1234.5`, `1,234.50`) into minor units of a currency
/// with `exponent` decimals; `None` for anything else.
fn parse_amount(s: &str, exponent: u32) -> Option<i64> {
    let s = s.trim().replace(',', "");
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if whole.is_empty() && frac.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > exponent as usize || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_value: i64 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let scale = 10i64.checked_pow(exponent)?;
    let frac_scaled = frac_value.checked_mul(10i64.checked_pow(exponent - frac.len() as u32)?)?;
    whole.checked_mul(scale)?.checked_add(frac_scaled)
}

/// Reads the order form: lines come as `sku`, `description`, `quantity`, `unit_price` (major
/// units), `budget_category`, one value of each per row; empty rows are skipped. Returns the
/// page to show again (with the errors at their fields) and, when everything is valid, the
/// order input. `add_line` asks for the form again with one more row.
fn read_form(page: &mut NewOrderPage, fields: &[(String, String)]) -> Option<OrderInput> {
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let all = |k: &str| fields.iter().filter(|(f, _)| f == k).map(|(_, v)| v.trim().to_string()).collect::<Vec<_>>();
    let (skus, descs, qtys, prices, cats) =
        (all("sku"), all("description"), all("quantity"), all("unit_price"), all("budget_category"));
    let rows = skus.len().min(MAX_FORM_LINES);
    let at = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
    let mut lines: Vec<LineInput> = (0..rows)
        .map(|i| LineInput {
            sku: at(&skus, i),
            description: at(&descs, i),
            quantity: at(&qtys, i),
            unit_price: at(&prices, i),
            budget_category: at(&cats, i),
            error: String::new(),
        })
        .filter(|l| !(l.sku.is_empty() && l.description.is_empty() && l.quantity.is_empty() && l.unit_price.is_empty()))
        .collect();
    page.currency = get("currency").to_uppercase();
    page.cost_center = get("cost_center");
    page.department = get("department");
    page.vendor = get("vendor_id");
    page.recurrence = get("recurrence");
    if !get("add_line").is_empty() {
        lines.push(LineInput::default());
        page.lines = lines;
        return None;
    }
    let currency = match page.currency.parse::<crate::domain::money::Currency>() {
        Ok(c) => Some(c),
        Err(e) => {
            page.errors.push(("currency".into(), e.to_string()));
            None
        }
    };
    let exponent = currency.map(|c| c.exponent()).unwrap_or(2);
    let mut parsed = Vec::new();
    for l in &mut lines {
        let quantity = l.quantity.parse::<i64>().ok().filter(|q| *q > 0);
        let price = parse_amount(&l.unit_price, exponent);
        if l.sku.is_empty() {
            l.error = "give the item's SKU".into();
        } else if quantity.is_none() {
            l.error = "the quantity must be a whole number above 0".into();
        } else if price.is_none() {
            l.error = format!("the unit price must be an amount such as 12.50 (at most {exponent} decimals)");
        }
        if let (true, Some(quantity), Some(unit_price_minor)) = (l.error.is_empty(), quantity, price) {
            parsed.push(Line {
                sku: l.sku.clone(),
                description: some(&l.description),
                quantity,
                unit_price_minor,
                tax_category: None,
                budget_category: some(&l.budget_category),
            });
        }
    }
    if lines.is_empty() {
        page.errors.push(("lines".into(), "add at least one line".into()));
    }
    let has_line_errors = lines.iter().any(|l| !l.error.is_empty());
    page.lines = if lines.is_empty() { vec![LineInput::default(); BLANK_LINES] } else { lines };
    let (Some(currency), false, true) = (currency, has_line_errors, page.errors.is_empty()) else {
        return None;
    };
    Some(OrderInput {
        cost_center: some(&page.cost_center),
        department: some(&page.department),
        customer_id: None,
        vendor_id: some(&page.vendor),
        currency,
        lines: parsed,
        recurrence: some(&page.recurrence).map(|interval| Recurrence { interval }),
        attributes: Default::default(),
    })
}

/// What a posted order form gives: the order input, or the page to show again (one more line
/// row asked for, or errors at their fields).
enum FormRead {
    Input(OrderInput),
    Show(Response),
}

fn read_or_show(page: &mut NewOrderPage, fields: &[(String, String)]) -> Result<FormRead, PageError> {
    let adding = !form_value(fields, "add_line").is_empty();
    match read_form(page, fields) {
        Some(input) => Ok(FormRead::Input(input)),
        None => {
            let status = if adding { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
            Ok(FormRead::Show((status, Html(page.render()?)).into_response()))
        }
    }
}

/// The form's page shown again with what the use case refused, at its field.
fn refused(mut page: NewOrderPage, field: String, message: String) -> Result<Response, PageError> {
    let key = if field.starts_with("lines") { "lines".to_string() } else { field };
    page.errors.push((key, message));
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
}

fn form_value(fields: &[(String, String)], key: &str) -> String {
    fields.iter().find(|(f, _)| f == key).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// `POST /orders`: creates a draft from the form ([`read_form`]); `submit` also submits it.
pub async fn create(
    State(s): State<WebState>,
    v: Viewer,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    v.check(&form_value(&fields, "csrf"))?;
    let mut page = NewOrderPage::new(v.nav("new"), "New order".into(), "/orders".into(), false);
    let input = match read_or_show(&mut page, &fields)? {
        FormRead::Input(input) => input,
        FormRead::Show(again) => return Ok(again),
    };
    let order = match s.approvals.create_order(&v.principal, input).await {
        Ok(o) => o,
        Err(ApprovalError::Invalid { field, message }) => return refused(page, field, message),
        Err(e) => return Err(e.into()),
    };
    // The draft exists whatever the submission says: its page shows where it stands (posting
    // the form again would make a second order).
    if !form_value(&fields, "submit").is_empty()
        && let Err(e) = s.approvals.submit(&v.principal, &order.id).await
    {
        tracing::info!(order = %order.id, error = %e, "a new order was saved but not submitted");
    }
    Ok(Redirect::to(&format!("/orders/{}", order.id)).into_response())
}

/// `GET /orders/{id}/edit`: the order's form, filled in; for its requester while it is a draft
/// or pending (a pending order is evaluated again and its decisions reset).
pub async fn edit_page(
    State(s): State<WebState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let o = s.approvals.order(&v.principal, &id).await?;
    let exp = o.input.currency.exponent();
    let major = |minor: i64| {
        let unit = 10i64.pow(exp);
        if exp == 0 { minor.to_string() } else { format!("{}.{:0w$}", minor / unit, minor % unit, w = exp as usize) }
    };
    let mut lines: Vec<LineInput> = o
        .input
        .lines
        .iter()
        .map(|l| LineInput {
            sku: l.sku.clone(),
            description: l.description.clone().unwrap_or_default(),
            quantity: l.quantity.to_string(),
            unit_price: major(l.unit_price_minor),
            budget_category: l.budget_category.clone().unwrap_or_default(),
            error: String::new(),
        })
        .collect();
    lines.push(LineInput::default());
    let mut page = NewOrderPage::new(v.nav("orders"), format!("Edit order {id}"), format!("/orders/{id}/edit"), true);
    page.currency = o.input.currency.as_str().to_string();
    page.cost_center = o.input.cost_center.clone().unwrap_or_default();
    page.department = o.input.department.clone().unwrap_or_default();
    page.vendor = o.input.vendor_id.clone().unwrap_or_default();
    page.recurrence = o.input.recurrence.as_ref().map(|r| r.interval.clone()).unwrap_or_default();
    page.lines = lines;
    Ok(Html(page.render()?))
}

/// `POST /orders/{id}/edit`: replaces the order's fields and lines with the form's.
pub async fn edit(
    State(s): State<WebState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    v.check(&form_value(&fields, "csrf"))?;
    let mut page = NewOrderPage::new(v.nav("orders"), format!("Edit order {id}"), format!("/orders/{id}/edit"), true);
    let input = match read_or_show(&mut page, &fields)? {
        FormRead::Input(input) => input,
        FormRead::Show(again) => return Ok(again),
    };
    let patch = crate::domain::order::OrderPatch {
        cost_center: Some(input.cost_center),
        department: Some(input.department),
        vendor_id: Some(input.vendor_id),
        currency: Some(input.currency),
        lines: Some(input.lines),
        recurrence: Some(input.recurrence),
        ..Default::default()
    };
    match s.approvals.edit(&v.principal, &id, patch).await {
        Ok(_) => {}
        Err(ApprovalError::Invalid { field, message }) => return refused(page, field, message),
        Err(e) => return Err(e.into()),
    }
    if !form_value(&fields, "submit").is_empty() {
        s.approvals.submit(&v.principal, &id).await?;
    }
    Ok(Redirect::to(&format!("/orders/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_typed_in_major_units_become_minor_units() {
        assert_eq!(parse_amount("12.5", 2), Some(1250));
        assert_eq!(parse_amount("1,234.56", 2), Some(123_456));
        assert_eq!(parse_amount("7", 0), Some(7));
        assert_eq!(parse_amount(".5", 2), Some(50));
        assert_eq!(parse_amount("1.234", 2), None);
        assert_eq!(parse_amount("-1", 2), None);
        assert_eq!(parse_amount("1e3", 2), None);
        assert_eq!(parse_amount("", 2), None);
        assert_eq!(parse_amount("99999999999999999999", 2), None);
    }
}
