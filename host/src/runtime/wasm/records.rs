//! `greenlight:plugin/records` (API 1.1): what the tenant's connector said about the order being
//! evaluated, served to approval steps from the context the host built before the chain ran — the
//! same data the evaluation record keeps, so a replay gives the same answer.

use super::PluginState;
use super::bindings::{records, types};
use crate::domain::step::{Customer, ErpBudget, OrderContext};

/// The connector data one step call may read.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// The order's customer and unpaid invoices.
    pub customer: Option<Customer>,
    /// The ERP's budgets for the order.
    pub budgets: Vec<ErpBudget>,
}

impl Records {
    /// The records of an order context.
    pub fn of(ctx: &OrderContext) -> Records {
        Records { customer: ctx.customer.clone(), budgets: ctx.budgets.clone() }
    }
}

impl records::Host for PluginState {
    fn customer(&mut self) -> wasmtime::Result<Option<types::CustomerProfile>> {
        Ok(self.call.records.customer.as_ref().map(|c| types::CustomerProfile {
            id: c.id.clone(),
            name: c.name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            credit_limit_minor: c.credit_limit_minor,
            currency: c.currency.clone(),
            account_manager: c.account_manager.clone(),
        }))
    }

    fn open_invoices(&mut self) -> wasmtime::Result<Vec<types::OpenInvoice>> {
        let invoices = self.call.records.customer.as_ref().map(|c| c.open_invoices.as_slice()).unwrap_or_default();
        Ok(invoices
            .iter()
            .map(|i| types::OpenInvoice {
                id: i.id.clone(),
                amount_minor: i.amount_minor,
                currency: i.currency.clone(),
                due_date: i.due_date.clone(),
            })
            .collect())
    }

    fn budgets(&mut self) -> wasmtime::Result<Vec<types::Budget>> {
        Ok(self
            .call
            .records
            .budgets
            .iter()
            .map(|b| types::Budget {
                key: b.key.clone(),
                period: b.period.clone(),
                limit_minor: b.limit_minor,
                used_minor: b.used_minor,
            })
            .collect())
    }
}
