//! ERP connector over a small REST contract (see README.md): JSON over HTTP, the ERP's
//! credentials added by the host from the operator's secrets, never in tenant config.
//!
//! | call | request | success |
//! |---|---|---|
//! | customer | `GET {base}/customers/{id}` | 200 `{id, name, email?, phone?, credit_limit_minor?, currency?, account_manager?}` |
//! | open invoices | `GET {base}/customers/{id}/invoices?status=open` | 200 `[{id, amount_minor, currency, due_date}]` |
//! | budgets | `GET {base}/budgets?cost_center={code}` | 200 `[{key, period, limit_minor, used_minor}]` |
//! | export | `POST {base}/orders`, `Idempotency-Key: {order id}` | 200/201 `{external_id, message?}` |
//! | credit | `POST {base}/customers/{id}/credit`, `Idempotency-Key: {key}` | 200/201 `{credit_limit_minor, credit_used_minor, currency?}`; 204: no credit line |
//!
//! 404 is "not found"; 408, 429, 5xx and no answer are "unavailable" (the host retries an
//! export with backoff); any other status is "rejected".

use greenlight_plugin_api::serde_json::{Value, json};
use greenlight_plugin_api::*;

/// What an HTTP status means for a call.
pub fn classify(status: u16, what: &str) -> Result<(), ConnectorError> {
    match status {
        200..=299 => Ok(()),
        404 => Err(ConnectorError::NotFound(format!("the ERP does not know {what}"))),
        408 | 425 | 429 | 500..=599 => {
            Err(ConnectorError::Unavailable(format!("the ERP answered {status} for {what}")))
        }
        _ => Err(ConnectorError::Rejected(format!("the ERP refused {what} with {status}"))),
    }
}

fn base() -> Result<String, ConnectorError> {
    let base = host::config()["base_url"].as_str().unwrap_or_default().trim_end_matches('/').to_string();
    if base.is_empty() {
        return Err(ConnectorError::Failed("erp-rest is not configured: set `base_url`".into()));
    }
    Ok(base)
}

fn call(request: http::Request, what: &str) -> Result<Value, ConnectorError> {
    let resp = http::send(&request).map_err(|e| match e {
        http::HttpError::Denied(m) => {
            ConnectorError::Rejected(format!("the host refused the ERP's origin ({m}); grant it"))
        }
        other => ConnectorError::Unavailable(format!("the ERP could not be reached for {what}: {other:?}")),
    })?;
    classify(resp.status, what)?;
    serde_json::from_slice(&resp.body).map_err(|e| {
        ConnectorError::Failed(format!("the ERP's answer for {what} is not the JSON the contract says: {e}"))
    })
}

fn get(path: &str, what: &str) -> Result<Value, ConnectorError> {
    call(
        http::Request { method: "GET".into(), url: format!("{}{path}", base()?), headers: Vec::new(), body: None },
        what,
    )
}

/// Percent-encodes a path or query segment.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().map(str::to_string)
}

/// A customer profile from the contract's JSON.
pub fn customer_from(v: &Value, id: &str) -> Result<CustomerProfile, ConnectorError> {
    let name = text(v, "name").ok_or_else(|| ConnectorError::Failed(format!("customer {id}: `name` is missing")))?;
    Ok(CustomerProfile {
        id: text(v, "id").unwrap_or_else(|| id.to_string()),
        name,
        email: text(v, "email"),
        phone: text(v, "phone"),
        credit_limit_minor: v["credit_limit_minor"].as_i64(),
        currency: text(v, "currency"),
        account_manager: text(v, "account_manager"),
    })
}

/// The export body for an order.
pub fn export_body(ctx: &OrderContext) -> Value {
    let o = &ctx.order;
    json!({
        "id": o.id,
        "requester": o.requester,
        "cost_center": o.cost_center,
        "department": o.department,
        "customer_id": o.customer_id,
        "vendor_id": o.vendor_id,
        "currency": o.currency,
        "subtotal_minor": ctx.subtotal_minor,
        "lines": o.lines.iter().map(|l| json!({
            "sku": l.sku,
            "description": l.description,
            "quantity": l.quantity,
            "unit_price_minor": l.unit_price_minor,
            "tax_category": l.tax_category,
            "budget_category": l.budget_category,
        })).collect::<Vec<_>>(),
    })
}

/// The connector.
pub struct ErpRest;

impl Connector for ErpRest {
    fn customer(id: String) -> Result<CustomerProfile, ConnectorError> {
        let v = get(&format!("/customers/{}", encode(&id)), &format!("customer {id}"))?;
        customer_from(&v, &id)
    }

    fn open_invoices(id: String) -> Result<Vec<OpenInvoice>, ConnectorError> {
        let v = get(&format!("/customers/{}/invoices?status=open", encode(&id)), &format!("the invoices of {id}"))?;
        let list = v.as_array().ok_or_else(|| ConnectorError::Failed("invoices: expected a JSON array".into()))?;
        list.iter()
            .map(|i| {
                Ok(OpenInvoice {
                    id: text(i, "id").ok_or_else(|| ConnectorError::Failed("invoice without `id`".into()))?,
                    amount_minor: i["amount_minor"]
                        .as_i64()
                        .ok_or_else(|| ConnectorError::Failed("invoice without integer `amount_minor`".into()))?,
                    currency: text(i, "currency").unwrap_or_default(),
                    due_date: text(i, "due_date").unwrap_or_default(),
                })
            })
            .collect()
    }

    fn budgets(ctx: OrderContext) -> Result<Vec<Budget>, ConnectorError> {
        let Some(cc) = ctx.order.cost_center.clone() else { return Ok(Vec::new()) };
        let v = get(&format!("/budgets?cost_center={}", encode(&cc)), &format!("the budgets of {cc}"))?;
        let list = v.as_array().ok_or_else(|| ConnectorError::Failed("budgets: expected a JSON array".into()))?;
        Ok(list
            .iter()
            .filter_map(|b| {
                Some(Budget {
                    key: text(b, "key")?,
                    period: text(b, "period").unwrap_or_else(|| "year".into()),
                    limit_minor: b["limit_minor"].as_i64()?,
                    used_minor: b["used_minor"].as_i64().unwrap_or(0),
                })
            })
            .collect())
    }

    fn export_order(ctx: OrderContext) -> Result<ExportResult, ConnectorError> {
        let id = ctx.order.id.clone();
        let request = http::Request {
            method: "POST".into(),
            url: format!("{}/orders", base()?),
            headers: vec![("content-type".into(), "application/json".into()), ("idempotency-key".into(), id.clone())],
            body: Some(export_body(&ctx).to_string().into_bytes()),
        };
        let v = call(request, &format!("order {id}"))?;
        let external_id = text(&v, "external_id")
            .ok_or_else(|| ConnectorError::Failed(format!("the ERP took order {id} but sent no `external_id`")))?;
        Ok(ExportResult { external_id, message: text(&v, "message") })
    }

    fn update_credit(update: CreditUpdate) -> Result<Option<CreditLine>, ConnectorError> {
        let id = update.customer_id.clone();
        let what = format!("the credit update of customer {id} for order {}", update.order_id);
        let body =
            json!({"order_id": update.order_id, "amount_minor": update.amount_minor, "currency": update.currency});
        let request = http::Request {
            method: "POST".into(),
            url: format!("{}/customers/{}/credit", base()?, encode(&id)),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("idempotency-key".into(), update.idempotency_key.clone()),
            ],
            body: Some(body.to_string().into_bytes()),
        };
        let resp = http::send(&request).map_err(|e| match e {
            http::HttpError::Denied(m) => {
                ConnectorError::Rejected(format!("the host refused the ERP's origin ({m}); grant it"))
            }
            other => ConnectorError::Unavailable(format!("the ERP could not be reached for {what}: {other:?}")),
        })?;
        classify(resp.status, &what)?;
        if resp.status == 204 {
            return Ok(None);
        }
        let v: Value = serde_json::from_slice(&resp.body).map_err(|e| {
            ConnectorError::Failed(format!("the ERP's answer for {what} is not the JSON the contract says: {e}"))
        })?;
        credit_line_from(&v, &update.currency).map(Some)
    }
}

/// The credit line from the contract's JSON; the currency defaults to the update's.
pub fn credit_line_from(v: &Value, currency: &str) -> Result<CreditLine, ConnectorError> {
    let int = |key: &str| {
        v[key].as_i64().ok_or_else(|| ConnectorError::Failed(format!("the credit line has no integer `{key}`")))
    };
    Ok(CreditLine {
        credit_limit_minor: int("credit_limit_minor")?,
        credit_used_minor: int("credit_used_minor")?,
        currency: text(v, "currency").unwrap_or_else(|| currency.to_string()),
    })
}

export_connector!(ErpRest);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        assert!(classify(201, "x").is_ok());
        assert!(matches!(classify(404, "x"), Err(ConnectorError::NotFound(_))));
        assert!(matches!(classify(503, "x"), Err(ConnectorError::Unavailable(_))));
        assert!(matches!(classify(429, "x"), Err(ConnectorError::Unavailable(_))));
        assert!(matches!(classify(422, "x"), Err(ConnectorError::Rejected(_))));
    }

    #[test]
    fn customers_parse_and_need_a_name() {
        let v =
            json!({"id": "C-1", "name": "Acme", "credit_limit_minor": 500000, "currency": "EUR", "phone": "+4930123"});
        let c = customer_from(&v, "C-1").expect("valid");
        assert_eq!(
            (c.name.as_str(), c.credit_limit_minor, c.phone.as_deref()),
            ("Acme", Some(500000), Some("+4930123"))
        );
        assert!(customer_from(&json!({"id": "C-1"}), "C-1").is_err());
    }

    #[test]
    fn credit_lines_need_integer_amounts() {
        let line =
            credit_line_from(&json!({"credit_limit_minor": 500000, "credit_used_minor": 7500}), "EUR").expect("valid");
        assert_eq!((line.credit_limit_minor, line.credit_used_minor, line.currency.as_str()), (500000, 7500, "EUR"));
        assert!(credit_line_from(&json!({"credit_limit_minor": 500000, "credit_used_minor": 1.5}), "EUR").is_err());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("C 1/../x"), "C%201%2F..%2Fx");
        assert_eq!(encode("CC-100"), "CC-100");
    }
}
