//! E-mail channel: for each event, a message to every recipient with an address, rendered from
//! the tenant's templates and handed to the host's `mail` capability. The host sends it through
//! the operator's SMTP relay; this plugin never sees a server or a password.
//!
//! Templates come from the `templates` config key, per event name with a `default` fallback,
//! and built-in texts when neither is set. Placeholders are `{name}`; unknown ones stay as
//! written, so a typo shows in the mail instead of vanishing.
//!
//! When the host gives a recipient approve and reject links (`data.links`, only to channels
//! granted `mail`), they fill `{approve_link}` and `{reject_link}`; a template that places
//! neither gets them appended, so no approver misses them.

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

/// The recipient's approve and reject links, if the host made them.
fn links(data: &serde_json::Value, recipient: Option<&str>) -> Option<(String, String)> {
    let l = &data["links"][recipient?];
    Some((l["approve"].as_str()?.to_string(), l["reject"].as_str()?.to_string()))
}

/// The body with the links placed where the template says, or appended.
fn with_links(body: &str, values: &mut Vec<(&'static str, String)>, links: Option<(String, String)>) -> String {
    let Some((approve, reject)) = links else { return body.to_string() };
    let mut body = body.to_string();
    if !body.contains("{approve_link}") && !body.contains("{reject_link}") {
        body.push_str(
            "\nApprove: {approve_link}\nReject: {reject_link}\n(Each link shows the order and asks you to confirm; it works once.)\n",
        );
    }
    values.push(("approve_link", approve));
    values.push(("reject_link", reject));
    body
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
        let data: serde_json::Value = serde_json::from_str(&n.data_json).unwrap_or_default();
        // One message per recipient, so each greeting is personal and no address leaks to others.
        for r in n.recipients.iter() {
            let Some(address) = r.email.clone() else { continue };
            let who = r.name.clone().unwrap_or_else(|| address.clone());
            let mut values = template::values(&n);
            values.push(("recipient", who));
            let body = with_links(&body, &mut values, links(&data, r.name.as_deref()));
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

    #[test]
    fn a_recipients_links_are_placed_or_appended() {
        let data =
            serde_json::json!({"links": {"bob": {"approve": "https://h/decide/a", "reject": "https://h/decide/r"}}});
        assert_eq!(links(&data, Some("carol")), None, "another recipient's links are not used");
        assert_eq!(links(&data, None), None);
        let mine = links(&data, Some("bob"));
        let mut values = Vec::new();
        let appended = template::render(&with_links("Hello", &mut values, mine.clone()), &values);
        assert!(appended.contains("Approve: https://h/decide/a\nReject: https://h/decide/r"), "{appended}");
        let mut values = Vec::new();
        let placed = template::render(&with_links("Yes: {approve_link}", &mut values, mine), &values);
        assert_eq!(placed, "Yes: https://h/decide/a");
        let mut values = Vec::new();
        assert_eq!(with_links("Hello", &mut values, None), "Hello");
    }
}
