//! Price adjustments: tax, discounts, surcharges and shipping that steps add to an order's
//! total, in minor units.

use super::money::Minor;
use serde::{Deserialize, Serialize};

/// What a price adjustment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriceKind {
    /// Tax; summed into `tax_minor`.
    Tax,
    /// A reduction (negative amount).
    Discount,
    /// An extra charge.
    Surcharge,
    /// Shipping and handling.
    Shipping,
}

/// An amount a step adds to the order's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceAdjustment {
    /// What kind of adjustment.
    pub kind: PriceKind,
    /// Short code, e.g. `VAT-19`.
    pub code: String,
    /// Signed amount in minor units (discounts negative).
    pub amount_minor: Minor,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The step that added it (set by the host; ignored on input).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}
