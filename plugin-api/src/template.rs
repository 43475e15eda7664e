//! Text templates for channels: `{name}` placeholders filled from a notification, so every
//! notifier renders messages the same way and tenants learn one syntax.

#[cfg(feature = "notifier")]
use crate::Notification;

/// Replaces each `{name}` with its value. Unknown placeholders stay as written, so a typo shows
/// in the message instead of vanishing.
pub fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The placeholders of a notification: `event`, `order_id`, `requester`, `status`,
/// `total_minor`, `currency`, `cost_center`, `department`, `stage`, `reason`, `delivery_id`.
#[cfg(feature = "notifier")]
pub fn values(n: &Notification) -> Vec<(&'static str, String)> {
    let o = &n.order;
    vec![
        ("event", n.event.clone()),
        ("order_id", o.id.clone()),
        ("requester", o.requester.clone()),
        ("status", o.status.clone()),
        ("total_minor", o.total_minor.to_string()),
        ("currency", o.currency.clone()),
        ("cost_center", o.cost_center.clone().unwrap_or_else(|| "-".into())),
        ("department", o.department.clone().unwrap_or_else(|| "-".into())),
        ("stage", n.stage.clone().unwrap_or_default()),
        ("reason", n.reason.clone().unwrap_or_default()),
        ("delivery_id", n.delivery_id.clone()),
    ]
}

/// Whether a channel configured with `events` (an array of event names; empty or absent: all)
/// sends this event.
pub fn subscribed(config: &serde_json::Value, event: &str) -> bool {
    match config["events"].as_array() {
        Some(events) if !events.is_empty() => events.iter().any(|e| e.as_str() == Some(event)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_unknown_ones_kept() {
        let v = [("order_id", "o-1".to_string()), ("reason", "too expensive".to_string())];
        assert_eq!(render("Order {order_id}: {reason} {nope}", &v), "Order o-1: too expensive {nope}");
    }

    #[test]
    fn an_empty_or_absent_event_list_means_all() {
        assert!(subscribed(&serde_json::json!({}), "order_approved"));
        assert!(subscribed(&serde_json::json!({"events": []}), "order_approved"));
        assert!(subscribed(&serde_json::json!({"events": ["order_approved"]}), "order_approved"));
        assert!(!subscribed(&serde_json::json!({"events": ["order_rejected"]}), "order_approved"));
    }
}
