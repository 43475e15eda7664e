//! Risk flags: what a step wants every later reader of an order to notice (R5). They travel
//! with the order and into its audit trail.

use serde::{Deserialize, Serialize};

/// How serious a risk flag is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Deserves attention (default).
    #[default]
    Warning,
    /// Needs elevated clearance.
    High,
}

/// A risk flag that travels with the order (R5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskFlag {
    /// Machine-readable code, e.g. `vendor_not_approved`.
    pub code: String,
    /// How serious.
    #[serde(default)]
    pub severity: Severity,
    /// Why the flag was raised, for people.
    pub message: String,
    /// The step that raised it (set by the host; ignored on input).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}
