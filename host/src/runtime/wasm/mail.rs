//! `greenlight:plugin/mail`: hands a message to the host's mail relay. The relay (SMTP settings
//! and credentials) belongs to the operator; the plugin only gets to ask.

use super::PluginState;
use super::bindings::mail;
use crate::runtime::relay::{OutgoingMail, SendError};

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
        Ok(relay.send(out).map_err(|e| match e {
            SendError::Refused(m) | SendError::Unavailable(m) => mail::MailError::Failed(m),
        }))
    }
}
