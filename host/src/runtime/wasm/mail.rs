//! `greenlight:plugin/mail`: hands a message to the host's mail relay. The relay (SMTP settings
//! and credentials) belongs to the operator; the plugin only gets to ask.

use super::PluginState;
use super::bindings::mail;

/// One outgoing e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Tenant on whose behalf it is sent.
    pub tenant: String,
    /// The plugin that sent it; none for the host's own notices.
    pub plugin: Option<String>,
    /// The outbox delivery it carries, for the receiver to de-duplicate retries on.
    pub delivery: Option<String>,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain text.
    pub text_body: String,
    /// HTML, optional.
    pub html_body: Option<String>,
}

/// The operator's mail relay.
pub trait MailRelay: Send + Sync + std::fmt::Debug {
    /// Accepts a message for delivery, or says why not.
    fn send(&self, mail: OutgoingMail) -> Result<(), String>;
}

impl mail::Host for PluginState {
    fn send(&mut self, message: mail::Message) -> wasmtime::Result<Result<(), mail::MailError>> {
        let Some(relay) = self.call.mail.clone() else {
            self.denied = Some(
                "mail: grant `mail` to this plugin for the tenant (grants.mail), and give the host an SMTP relay (--smtp-relay)"
                    .into(),
            );
            return Ok(Err(mail::MailError::Denied("no mail capability granted".into())));
        };
        if message.to.is_empty()
            || message.to.len() > 100
            || message.to.iter().any(|a| !a.contains('@') || a.len() > 254)
        {
            return Ok(Err(mail::MailError::Failed("recipients must be 1 to 100 e-mail addresses".into())));
        }
        if message.subject.len() > 1_000 || message.text_body.len() > 1 << 20 {
            return Ok(Err(mail::MailError::Failed("the message is too large".into())));
        }
        let out = OutgoingMail {
            tenant: self.call.tenant.clone(),
            plugin: Some(self.call.plugin.clone()),
            delivery: None,
            to: message.to,
            subject: message.subject,
            text_body: message.text_body,
            html_body: message.html_body,
        };
        Ok(relay.send(out).map_err(mail::MailError::Failed))
    }
}

/// Why the SMTP relay could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relay URL does not parse.
    #[error(
        "the SMTP relay URL is not valid ({0}); use smtp://host:port, smtp://user:pass@host:587?tls=required or smtps://user:pass@host:465"
    )]
    Url(String),
    /// The sender address does not parse.
    #[error("'{0}' is not a valid sender address; pass --mail-from name@example.com")]
    From(String),
}

/// The operator's SMTP relay (lettre). Credentials live in its URL, which comes from host
/// configuration only; plugins never see them.
pub struct SmtpRelay {
    transport: lettre::SmtpTransport,
    from: lettre::message::Mailbox,
    host: String,
}

impl std::fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the URL: it may hold the relay's password.
        f.debug_struct("SmtpRelay").field("host", &self.host).field("from", &self.from.to_string()).finish()
    }
}

impl SmtpRelay {
    /// A relay from its URL (`smtp://`, `smtps://`, credentials and `?tls=` as lettre reads
    /// them) and the sender address.
    pub fn new(url: &str, from: &str) -> Result<SmtpRelay, RelayError> {
        let transport = lettre::SmtpTransport::from_url(url)
            .map_err(|e| RelayError::Url(e.to_string()))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        let from = from.parse().map_err(|_| RelayError::From(from.to_string()))?;
        let host = url.rsplit('@').next().unwrap_or(url).split('?').next().unwrap_or_default().to_string();
        Ok(SmtpRelay { transport, from, host })
    }
}

impl MailRelay for SmtpRelay {
    fn send(&self, mail: OutgoingMail) -> Result<(), String> {
        use lettre::Transport;
        use lettre::message::{Message, MultiPart, header};
        let custom = |name: &'static str, value: String| {
            header::HeaderValue::new(header::HeaderName::new_from_ascii_str(name), value)
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject)
            .raw_header(custom("X-Greenlight-Tenant", mail.tenant));
        if let Some(plugin) = mail.plugin {
            builder = builder.raw_header(custom("X-Greenlight-Plugin", plugin));
        }
        if let Some(delivery) = mail.delivery {
            builder = builder.raw_header(custom("X-Greenlight-Delivery", delivery));
        }
        for to in &mail.to {
            builder = builder.to(to.parse().map_err(|_| format!("'{to}' is not a valid e-mail address"))?);
        }
        let message = match mail.html_body {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.text_body, html)),
            None => builder.header(header::ContentType::TEXT_PLAIN).body(mail.text_body),
        }
        .map_err(|e| format!("the message could not be built: {e}"))?;
        self.transport.send(&message).map(|_| ()).map_err(|e| format!("the SMTP relay did not take the message: {e}"))
    }
}
