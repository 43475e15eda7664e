//! Connectors: an instance of either plugin-API version, called the same way, and the calls the
//! host makes of it, answered in domain types (the records of an order, an export, a credit
//! update).

use super::sandbox::PluginState;
use super::{CallContext, CallStats, LoadedPlugin, WasmRuntime, bindings, convert};
use crate::domain::credit::{CreditLine, CreditUpdate};
use crate::domain::step::{Customer, ErpBudget, OrderContext};
use crate::engine::StepError;
use wasmtime::Store;

/// A connector instance of either plugin-API version, called the same way.
pub(crate) enum ConnectorInstance {
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

/// How a connector said no, in the host's terms (the WIT `connector-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorError {
    /// The ERP does not know it.
    NotFound(String),
    /// The ERP cannot answer now; asking later may help.
    Unavailable(String),
    /// The ERP refused.
    Refused(String),
    /// The connector failed otherwise.
    Failed(String),
}

impl From<bindings::types::ConnectorError> for ConnectorError {
    fn from(e: bindings::types::ConnectorError) -> Self {
        use bindings::types::ConnectorError as E;
        match e {
            E::NotFound(m) => ConnectorError::NotFound(m),
            E::Unavailable(m) => ConnectorError::Unavailable(m),
            E::Rejected(m) => ConnectorError::Refused(m),
            E::Failed(m) => ConnectorError::Failed(m),
        }
    }
}

/// A connector's answer to one question.
pub type Answer<T> = Result<T, ConnectorError>;

/// A credit update's answer: the customer's credit line after it, if the ERP keeps one.
pub type CreditAnswer = Answer<Option<CreditLine>>;

/// What a connector reported about an order before its steps ran: the customer (profile with
/// unpaid invoices) when the order names one, the budgets when it names a cost center.
#[derive(Debug, Clone)]
pub struct Records {
    /// The customer, if the order names one.
    pub customer: Option<Answer<Customer>>,
    /// The ERP's budgets, if the order names a cost center.
    pub budgets: Option<Answer<Vec<ErpBudget>>>,
}

impl WasmRuntime {
    /// Asks a connector, in one fresh instance, for the records of an order (see [`Records`]).
    pub fn records(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        ctx: &OrderContext,
    ) -> (Result<Records, StepError>, CallStats) {
        let customer_id = ctx.order.customer_id.clone();
        let want_budgets = ctx.order.cost_center.is_some();
        let wit_ctx = convert::context(ctx);
        let (result, stats) = self.with_connector(plugin, call, |s, c| {
            let customer = match &customer_id {
                Some(id) => Some((c.customer(&mut *s, id)?, c.open_invoices(&mut *s, id)?)),
                None => None,
            };
            let budgets = if want_budgets { Some(c.budgets(&mut *s, &wit_ctx)?) } else { None };
            Ok((customer, budgets))
        });
        let records = result.map(|(customer, budgets)| Records {
            customer: customer.map(|(profile, invoices)| match (profile, invoices) {
                (Ok(p), Ok(i)) => Ok(convert::customer(p, i)),
                (Err(e), _) | (_, Err(e)) => Err(e.into()),
            }),
            budgets: budgets.map(|b| b.map(|b| b.into_iter().map(convert::budget).collect()).map_err(Into::into)),
        });
        (records, stats)
    }

    /// Asks a connector for a customer's profile alone, without its invoices.
    pub fn customer_profile(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        id: &str,
    ) -> (Result<Answer<Customer>, StepError>, CallStats) {
        let (result, stats) = self.with_connector(plugin, call, |s, c| c.customer(s, id));
        (result.map(|r| r.map(|p| convert::customer(p, Vec::new())).map_err(Into::into)), stats)
    }

    /// Sends an approved order to the ERP through a connector; the ERP's reference for it.
    pub fn export_order(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        ctx: &OrderContext,
    ) -> (Result<Answer<String>, StepError>, CallStats) {
        let wit_ctx = convert::context(ctx);
        let (result, stats) = self.with_connector(plugin, call, |s, c| c.export_order(s, &wit_ctx));
        (result.map(|r| r.map(|r| r.external_id).map_err(Into::into)), stats)
    }

    /// Books an approved customer order against the customer's credit line: the line after it
    /// (none when the ERP keeps none), or `None` when the connector speaks plugin API 1.0, which
    /// has no such call.
    pub fn update_credit(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        update: &CreditUpdate,
    ) -> (Result<Option<CreditAnswer>, StepError>, CallStats) {
        let wit_update = convert::credit_update(update);
        let (result, stats) = self.with_connector(plugin, call, |s, c| c.update_credit(s, &wit_update).transpose());
        let answer = result.map(|r| r.map(|r| r.map(|line| line.map(convert::credit_line)).map_err(Into::into)));
        (answer, stats)
    }
}
