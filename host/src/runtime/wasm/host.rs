//! `greenlight:plugin/host`: logging into tracing (bounded) and the plugin's configuration.

use super::PluginState;
use super::bindings::{host, types};

/// Longest log line kept; longer lines are cut.
const MAX_LINE: usize = 2_048;

impl types::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String) -> wasmtime::Result<()> {
        if self.log_budget == 0 {
            return Ok(());
        }
        let mut message = message;
        if message.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.log_budget = self.log_budget.saturating_sub(message.len().max(1));
        let (plugin, tenant, order) = (&self.call.plugin, &self.call.tenant, self.call.order.as_deref().unwrap_or(""));
        match level {
            host::Level::Trace => tracing::trace!(target: "greenlight::plugin", plugin, tenant, order, "{message}"),
            host::Level::Debug => tracing::debug!(target: "greenlight::plugin", plugin, tenant, order, "{message}"),
            host::Level::Info => tracing::info!(target: "greenlight::plugin", plugin, tenant, order, "{message}"),
            host::Level::Warn => tracing::warn!(target: "greenlight::plugin", plugin, tenant, order, "{message}"),
            host::Level::Error => {
                tracing::error!(target: "greenlight::plugin", plugin, tenant, order, "{message}");
                self.last_error = Some(message);
            }
        }
        Ok(())
    }

    fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.config_json.clone())
    }
}
