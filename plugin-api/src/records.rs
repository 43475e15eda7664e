//! What the tenant's connector (its ERP) said about the order being evaluated: the customer,
//! their unpaid invoices and the budgets of the order's cost center. The host reads them before
//! the chain runs and stores them with the evaluation, so a step stays pure and a replay sees the
//! same data. Empty when the tenant has no connector or the order names no customer (budgets: no
//! cost center). Since API 1.1.
//!
//! In native unit tests there is no host: set the records with [`crate::testing::with_records`].

use crate::{Budget, CustomerProfile, OpenInvoice};

#[cfg(target_arch = "wasm32")]
use crate::__bindings::greenlight::plugin1_1_0::records as wit;

/// The order's customer, if it names one the ERP knows.
pub fn customer() -> Option<CustomerProfile> {
    #[cfg(target_arch = "wasm32")]
    return wit::customer();
    #[cfg(not(target_arch = "wasm32"))]
    native::get().customer
}

/// The customer's unpaid invoices.
pub fn open_invoices() -> Vec<OpenInvoice> {
    #[cfg(target_arch = "wasm32")]
    return wit::open_invoices();
    #[cfg(not(target_arch = "wasm32"))]
    native::get().open_invoices
}

/// The budgets the ERP tracks for the order.
pub fn budgets() -> Vec<Budget> {
    #[cfg(target_arch = "wasm32")]
    return wit::budgets();
    #[cfg(not(target_arch = "wasm32"))]
    native::get().budgets
}

/// What the customer still owes: the sum of the open invoices in `currency` (others are not
/// comparable without a rate, so they are left out). Saturates instead of overflowing.
pub fn open_debt_minor(currency: &str) -> i64 {
    open_invoices().iter().filter(|i| i.currency == currency).fold(0i64, |sum, i| sum.saturating_add(i.amount_minor))
}

/// The records a native test sets.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// See [`customer`].
    pub customer: Option<CustomerProfile>,
    /// See [`open_invoices`].
    pub open_invoices: Vec<OpenInvoice>,
    /// See [`budgets`].
    pub budgets: Vec<Budget>,
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod native {
    use super::Records;
    use std::cell::RefCell;

    thread_local! {
        static RECORDS: RefCell<Records> = RefCell::new(Records::default());
    }

    pub(crate) fn get() -> Records {
        RECORDS.with(|r| r.borrow().clone())
    }

    pub(crate) fn set(records: Records) {
        RECORDS.with(|r| *r.borrow_mut() = records);
    }
}
