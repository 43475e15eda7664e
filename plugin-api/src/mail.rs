//! E-mail through the host's relay (notifiers).

pub use crate::__bindings::greenlight::plugin1_1_0::mail::{MailError, Message};

/// Hands a message to the host's relay.
pub fn send(message: &Message) -> Result<(), MailError> {
    #[cfg(target_arch = "wasm32")]
    return crate::__bindings::greenlight::plugin1_1_0::mail::send(message);
    #[cfg(not(target_arch = "wasm32"))]
    Err(MailError::Failed(format!("no relay outside WebAssembly (to {:?})", message.to)))
}
