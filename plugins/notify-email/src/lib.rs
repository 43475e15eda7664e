//! E-mail channel: for each event, a message to every recipient with an address, rendered from
//! the tenant's templates and handed to the host's `mail` capability. The host sends it through
//! the operator's SMTP relay; this plugin never sees a server or a password.
//!
//! Templates come from the `templates` config key, per event name with a `default` fallback,
//! and built-in texts when neither is set. Placeholders are `{name}`; unknown ones stay as
//! written, so a typo shows in the mail instead of vanishing.

use greenlight_plugin_api::*;

/// The built-in subject and body when the tenant configured none for an event.
fn builtin(event: &str) -> (&'static str, &'static str) {
    match event {
        "stage_opened" => (
            "Approval needed: order {order_id} ({total_minor} {currency})",
            "Hello {recipient},\n\norder {order_id} by {requester} waits for your decision on stage '{stage}'.\nTotal: {total_minor} {currency} (minor units). Cost center: {cost_center}.\n",
        ),
        "stage_escalated" => (
            "Escalated to you: order {order_id}",
            "Hello {recipient},\n\nstage '{stage}' of order {order_id} by {requester} is overdue and was escalated to you.\n",
        ),
        "order_approved" => (
            "Approved: order {order_id}",
            "Hello {recipient},\n\nyour order {order_id} ({total_minor} {currency}) is approved.\n",
        ),
        "order_rejected" => (
            "Rejected: order {order_id}",
            "Hello {recipient},\n\nyour order {order_id} was rejected.\nReason: {reason}\n",
        ),
        _ => ("Order {order_id}: {event}", "Hello {recipient},\n\norder {order_id} is now {status} ({event}).\n"),
    }
}

/// The subject and body templates for an event under this config.
pub fn templates(config: &serde_json::Value, event: &str) -> (String, String) {
    let (subject, body) = builtin(event);
    let pick = |key: &str, fallback: &str| {
        config["templates"][event][key]
            .as_str()
            .or_else(|| config["templates"]["default"][key].as_str())
            .unwrap_or(fallback)
            .to_string()
    };
    (pick("subject", subject), pick("body", body))
}

/// The channel.
pub struct Email;

impl Notifier for Email {
    fn deliver(n: Notification) -> Result<(), NotifyError> {
        let config = host::config();
        if !template::subscribed(&config, &n.event) {
            return Ok(());
        }
        let (subject, body) = templates(&config, &n.event);
        // One message per recipient, so each greeting is personal and no address leaks to others.
        for r in n.recipients.iter() {
            let Some(address) = r.email.clone() else { continue };
            let who = r.name.clone().unwrap_or_else(|| address.clone());
            let mut values = template::values(&n);
            values.push(("recipient", who));
            let message = mail::Message {
                to: vec![address],
                subject: template::render(&subject, &values),
                text_body: format!(
                    "{}\n-- \nGreenlight delivery {}\n",
                    template::render(&body, &values),
                    n.delivery_id
                ),
                html_body: None,
            };
            mail::send(&message).map_err(|e| match e {
                mail::MailError::Denied(m) => NotifyError::Permanent(format!(
                    "the host denied mail ({m}): grant `mail` to notify-email and configure the host's SMTP relay"
                )),
                mail::MailError::Failed(m) => NotifyError::Temporary(m),
            })?;
        }
        Ok(())
    }
}

export_notifier!(Email);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fall_back_from_event_to_default_to_builtin() {
        let config = serde_json::json!({"templates": {
            "order_approved": {"subject": "Yes: {order_id}"},
            "default": {"subject": "News about {order_id}", "body": "B"}
        }});
        assert_eq!(templates(&config, "order_approved"), ("Yes: {order_id}".to_string(), "B".to_string()));
        assert_eq!(templates(&config, "order_held").0, "News about {order_id}");
        let none = serde_json::json!({});
        assert_eq!(templates(&none, "order_rejected").0, "Rejected: order {order_id}");
        assert!(templates(&none, "order_rejected").1.contains("{reason}"));
    }
}
