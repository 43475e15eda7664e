//! A connector instance of either plugin-API version, called the same way.

use super::bindings;
use super::sandbox::PluginState;
use wasmtime::Store;

/// A connector instance of either plugin-API version, called the same way.
pub enum ConnectorInstance {
    /// Built against 1.1: every call.
    V1_1(bindings::connector::Connector),
    /// Built against 1.0: no credit update.
    V1_0(bindings::v1_0::connector::Connector),
}

type Called<T> = wasmtime::Result<Result<T, bindings::types::ConnectorError>>;

impl ConnectorInstance {
    /// `customer`.
    pub fn customer(&self, s: &mut Store<PluginState>, id: &str) -> Called<bindings::types::CustomerProfile> {
        match self {
            ConnectorInstance::V1_1(c) => c.greenlight_plugin1_1_0_connector_api().call_customer(s, id),
            ConnectorInstance::V1_0(c) => c.greenlight_plugin_connector_api().call_customer(s, id),
        }
    }

    /// `open-invoices`.
    pub fn open_invoices(&self, s: &mut Store<PluginState>, id: &str) -> Called<Vec<bindings::types::OpenInvoice>> {
        match self {
            ConnectorInstance::V1_1(c) => c.greenlight_plugin1_1_0_connector_api().call_open_invoices(s, id),
            ConnectorInstance::V1_0(c) => c.greenlight_plugin_connector_api().call_open_invoices(s, id),
        }
    }

    /// `budgets`.
    pub fn budgets(
        &self,
        s: &mut Store<PluginState>,
        ctx: &bindings::types::OrderContext,
    ) -> Called<Vec<bindings::types::Budget>> {
        match self {
            ConnectorInstance::V1_1(c) => c.greenlight_plugin1_1_0_connector_api().call_budgets(s, ctx),
            ConnectorInstance::V1_0(c) => c.greenlight_plugin_connector_api().call_budgets(s, ctx),
        }
    }

    /// `export-order`.
    pub fn export_order(
        &self,
        s: &mut Store<PluginState>,
        ctx: &bindings::types::OrderContext,
    ) -> Called<bindings::types::ExportResult> {
        match self {
            ConnectorInstance::V1_1(c) => c.greenlight_plugin1_1_0_connector_api().call_export_order(s, ctx),
            ConnectorInstance::V1_0(c) => c.greenlight_plugin_connector_api().call_export_order(s, ctx),
        }
    }

    /// `update-credit`; `None` when the connector was built against 1.0, which has no such call.
    pub fn update_credit(
        &self,
        s: &mut Store<PluginState>,
        update: &bindings::types::CreditUpdate,
    ) -> Option<Called<Option<bindings::types::CreditLine>>> {
        match self {
            ConnectorInstance::V1_1(c) => Some(c.greenlight_plugin1_1_0_connector_api().call_update_credit(s, update)),
            ConnectorInstance::V1_0(_) => None,
        }
    }
}
