//! The operator's mail relay: what plugins granted `mail` hand their messages to, and what the
//! host sends its own notices through (a locked account, to the tenant's admins). Its settings and
//! credentials come from the host's configuration only; nobody else sees them.

impl super::Runtimes {
    /// The operator's mail relay, for the host's own notices (the same relay the `mail`
    /// capability hands plugins).
    pub fn host_mail(&self) -> Option<std::sync::Arc<dyn MailRelay>> {
        self.options.mail_relay.clone()
    }
}

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

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Sending it again would fail the same way (a bad address, a 5xx answer).
    #[error("{0}")]
    Refused(String),
    /// The relay could not be reached or answered 4xx: try again later.
    #[error("{0}")]
    Unavailable(String),
}

/// The operator's mail relay.
pub trait MailRelay: Send + Sync + std::fmt::Debug {
    /// Accepts a message for delivery, or says why not.
    fn send(&self, mail: OutgoingMail) -> Result<(), SendError>;
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
    fn send(&self, mail: OutgoingMail) -> Result<(), SendError> {
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
            let address =
                to.parse().map_err(|_| SendError::Refused(format!("'{to}' is not a valid e-mail address")))?;
            builder = builder.to(address);
        }
        let message = match mail.html_body {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.text_body, html)),
            None => builder.header(header::ContentType::TEXT_PLAIN).body(mail.text_body),
        }
        .map_err(|e| SendError::Refused(format!("the message could not be built: {e}")))?;
        self.transport.send(&message).map(|_| ()).map_err(|e| {
            let why = format!("the SMTP relay did not take the message: {e}");
            if e.is_permanent() { SendError::Refused(why) } else { SendError::Unavailable(why) }
        })
    }
}
