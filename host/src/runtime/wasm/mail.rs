//! `greenlight:plugin/mail`: hands a message to the host's mail relay. The relay (SMTP settings
//! and credentials) belongs to the operator; the plugin only gets to ask.

use super::PluginState;
use super::bindings::mail;

/// One outgoing e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Tenant on whose behalf it is sent.
    pub tenant: String,
    /// The plugin that sent it.
    pub plugin: String,
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
pub trait MailRelay: Send + Sync {
    /// Accepts a message for delivery, or says why not.
    fn send(&self, mail: OutgoingMail) -> Result<(), String>;
}

impl mail::Host for PluginState {
    fn send(&mut self, message: mail::Message) -> wasmtime::Result<Result<(), mail::MailError>> {
        let Some(relay) = self.call.mail.clone() else {
            self.denied = Some("mail: this plugin or tenant has no mail capability, or no relay is configured".into());
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
            plugin: self.call.plugin.clone(),
            to: message.to,
            subject: message.subject,
            text_body: message.text_body,
            html_body: message.html_body,
        };
        Ok(relay.send(out).map_err(mail::MailError::Failed))
    }
}
