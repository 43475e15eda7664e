//! SMS channel, provider-neutral: for each recipient with a phone number, one HTTP request to
//! the provider's API, its body rendered from `body_template`. Provider credentials never sit in
//! tenant config: the operator's `--secrets` file makes the host add them per origin.
//!
//! Answers: 2xx sent; 408, 429 and 5xx or no answer: retried; other 4xx: refused for good.

use greenlight_plugin_api::*;

/// The built-in text of an event.
fn builtin(event: &str) -> &'static str {
    match event {
        "stage_opened" => {
            "Greenlight: order {order_id} by {requester} ({total_minor} {currency}) waits for your approval"
        }
        "stage_escalated" => "Greenlight: order {order_id} was escalated to you",
        "order_approved" => "Greenlight: order {order_id} ({total_minor} {currency}) is approved",
        "order_rejected" => "Greenlight: order {order_id} was rejected: {reason}",
        _ => "Greenlight: order {order_id} is {status}",
    }
}

/// JSON-escapes a value for the inside of a JSON string literal.
pub fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// The message text of an event under this config.
pub fn text(config: &serde_json::Value, n: &Notification) -> String {
    let t = config["text"][n.event.as_str()]
        .as_str()
        .or_else(|| config["text"]["default"].as_str())
        .unwrap_or_else(|| builtin(&n.event));
    template::render(t, &template::values(n))
}

/// The request body for one number.
pub fn body(config: &serde_json::Value, to: &str, text: &str) -> String {
    let t = config["body_template"].as_str().unwrap_or(r#"{"to": "{to}", "text": "{text}"}"#);
    template::render(t, &[("to", json_escape(to)), ("text", json_escape(text))])
}

/// What an HTTP status means.
pub fn classify(status: u16) -> Result<(), NotifyError> {
    match status {
        200..=299 => Ok(()),
        408 | 425 | 429 | 500..=599 => Err(NotifyError::Temporary(format!("the SMS provider answered {status}"))),
        _ => Err(NotifyError::Permanent(format!("the SMS provider refused the message with {status}"))),
    }
}

/// The channel.
pub struct Sms;

impl Notifier for Sms {
    fn deliver(n: Notification) -> Result<(), NotifyError> {
        let config = host::config();
        if !template::subscribed(&config, &n.event) {
            return Ok(());
        }
        let url = config["url"].as_str().unwrap_or_default().to_string();
        if url.is_empty() {
            return Err(NotifyError::Permanent("notify-sms is not configured: set `url`".into()));
        }
        let content_type = config["content_type"].as_str().unwrap_or("application/json").to_string();
        let message = text(&config, &n);
        for phone in n.recipients.iter().filter_map(|r| r.phone.as_deref()) {
            let request = http::Request {
                method: "POST".into(),
                url: url.clone(),
                headers: vec![
                    ("content-type".into(), content_type.clone()),
                    ("idempotency-key".into(), format!("{}:{phone}", n.delivery_id)),
                ],
                body: Some(body(&config, phone, &message).into_bytes()),
            };
            match http::send(&request) {
                Ok(resp) => classify(resp.status)?,
                Err(http::HttpError::Denied(m)) => {
                    return Err(NotifyError::Permanent(format!(
                        "the host refused the provider's origin ({m}); grant it"
                    )));
                }
                Err(e) => return Err(NotifyError::Temporary(format!("the SMS provider could not be reached: {e:?}"))),
            }
        }
        Ok(())
    }
}

export_notifier!(Sms);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_template_gets_json_escaped_values() {
        let config = serde_json::json!({});
        let b = body(&config, "+4915112345678", "say \"hi\"\nnow");
        let v: serde_json::Value = serde_json::from_str(&b).expect("valid JSON");
        assert_eq!(v, serde_json::json!({"to": "+4915112345678", "text": "say \"hi\"\nnow"}));
        let form = serde_json::json!({"body_template": "To={to}&Body={text}"});
        assert_eq!(body(&form, "+1", "x"), "To=+1&Body=x");
    }

    #[test]
    fn statuses_map_to_sent_retry_or_refused() {
        assert!(classify(201).is_ok());
        assert!(matches!(classify(503), Err(NotifyError::Temporary(_))));
        assert!(matches!(classify(401), Err(NotifyError::Permanent(_))));
    }
}
