//! Webhook channel: every event goes out as one JSON POST to the tenant's URL.
//!
//! Headers: `X-Greenlight-Delivery` (the delivery id, the same on every retry: de-duplicate on
//! it), `X-Greenlight-Event`, `X-Greenlight-Timestamp` (when this attempt started, RFC 3339) and
//! `X-Greenlight-Signature: sha256=<hex>`, the HMAC-SHA256 with the shared secret over
//! `<timestamp>.<body>`. A receiver recomputes it over the raw body, compares in constant time,
//! and refuses old timestamps to stop replays.
//!
//! Answers: 2xx delivered; 408, 425, 429 and 5xx or no answer: retried later; other 4xx: refused
//! for good (the delivery goes dead for an admin to look at).

use greenlight_plugin_api::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header's value for a body sent at `timestamp`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON body for a notification.
pub fn body(n: &Notification) -> serde_json::Value {
    let data: serde_json::Value = serde_json::from_str(&n.data_json).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "delivery_id": n.delivery_id,
        "event": n.event,
        "order": {
            "id": n.order.id,
            "requester": n.order.requester,
            "status": n.order.status,
            "total_minor": n.order.total_minor,
            "currency": n.order.currency,
            "cost_center": n.order.cost_center,
            "department": n.order.department,
        },
        "recipients": n.recipients.iter().map(|r| serde_json::json!({"name": r.name, "email": r.email, "phone": r.phone})).collect::<Vec<_>>(),
        "stage": n.stage,
        "reason": n.reason,
        "data": data,
    })
}

/// What an HTTP status means for the delivery.
pub fn classify(status: u16) -> Result<(), NotifyError> {
    match status {
        200..=299 => Ok(()),
        408 | 425 | 429 | 500..=599 => Err(NotifyError::Temporary(format!("the webhook answered {status}"))),
        _ => Err(NotifyError::Permanent(format!(
            "the webhook refused the event with {status}; check its URL and secret"
        ))),
    }
}

fn text(config: &serde_json::Value, key: &str) -> String {
    config.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

/// The channel.
pub struct Webhook;

impl Notifier for Webhook {
    fn deliver(n: Notification) -> Result<(), NotifyError> {
        let config = host::config();
        if !template::subscribed(&config, &n.event) {
            return Ok(()); // Not subscribed: nothing to send.
        }
        let (url, secret) = (text(&config, "url"), text(&config, "signing_secret"));
        if url.is_empty() || secret.len() < 16 {
            return Err(NotifyError::Permanent(
                "notify-webhook is not configured: set `url` and a `signing_secret` of at least 16 characters".into(),
            ));
        }
        let data: serde_json::Value = serde_json::from_str(&n.data_json).unwrap_or_default();
        let timestamp = data["attempt_at"].as_str().unwrap_or_default().to_string();
        let payload = body(&n).to_string().into_bytes();
        let request = http::Request {
            method: "POST".into(),
            url,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-greenlight-delivery".into(), n.delivery_id.clone()),
                ("x-greenlight-event".into(), n.event.clone()),
                ("x-greenlight-timestamp".into(), timestamp.clone()),
                ("x-greenlight-signature".into(), signature(&secret, &timestamp, &payload)),
            ],
            body: Some(payload),
        };
        match http::send(&request) {
            Ok(resp) => classify(resp.status),
            Err(http::HttpError::Denied(m)) => Err(NotifyError::Permanent(format!(
                "the host refused the webhook's origin ({m}); grant it to notify-webhook"
            ))),
            Err(e) => Err(NotifyError::Temporary(format!("the webhook could not be reached: {e:?}"))),
        }
    }
}

export_notifier!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Expected value computed independently, with Python's hmac module.
        let body = br#"{"event":"order_approved"}"#;
        let sig = signature("0123456789abcdef", "2026-11-22T12:00:00Z", body);
        assert_eq!(sig, "sha256=2c69e4c784473ddf0513e9743c325d49082cdf04d9225e91448cf4a0d4518964");
        assert_ne!(sig, signature("0123456789abcdef", "2026-11-22T12:00:01Z", body), "the timestamp is signed");
        assert_ne!(sig, signature("0123456789abcdeX", "2026-11-22T12:00:00Z", body), "the secret matters");
    }

    #[test]
    fn statuses_map_to_delivered_retry_or_refused() {
        assert!(classify(204).is_ok());
        for s in [408, 429, 500, 503] {
            assert!(matches!(classify(s), Err(NotifyError::Temporary(_))), "{s}");
        }
        for s in [400, 401, 404, 410] {
            assert!(matches!(classify(s), Err(NotifyError::Permanent(_))), "{s}");
        }
    }
}
