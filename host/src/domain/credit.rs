//! The customer's credit line (R4): an approved customer order is committed against it in the
//! ERP, through the tenant's connector, once the order is approved.

use crate::domain::money::Minor;
use serde::{Deserialize, Serialize};

/// What the host asks the ERP to book against a customer's credit line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditUpdate {
    /// Customer id.
    pub customer_id: String,
    /// The approved order.
    pub order_id: String,
    /// The order's total.
    pub amount_minor: Minor,
    /// ISO 4217 code of the amount.
    pub currency: String,
    /// The same on every retry, so the ERP books the update once.
    pub idempotency_key: String,
}

/// The customer's credit line after an update, as the ERP reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditLine {
    /// The credit limit.
    pub credit_limit_minor: Minor,
    /// Credit in use, the order included.
    pub credit_used_minor: Minor,
    /// ISO 4217 code.
    pub currency: String,
}
