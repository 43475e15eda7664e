//! The tenant's directory: the tenant, its users with their roles, limits and budgets, its cost
//! centers, and who a bearer token belongs to. Plain values; the store keeps them.

use super::actor::{Actor, Policy, Role};
use super::money::Minor;
use serde::{Deserialize, Serialize};

/// A tenant: one customer organisation; nothing crosses between tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Internal id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Segregation-of-duties and other settings.
    pub policy: Policy,
}

/// How often a user's budget resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// Calendar month, UTC.
    Month,
    /// Calendar quarter, UTC.
    Quarter,
    /// Calendar year, UTC.
    Year,
}

impl BudgetPeriod {
    /// Name in the API and database.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Month => "month",
            BudgetPeriod::Quarter => "quarter",
            BudgetPeriod::Year => "year",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<BudgetPeriod> {
        match s {
            "month" => Some(BudgetPeriod::Month),
            "quarter" => Some(BudgetPeriod::Quarter),
            "year" => Some(BudgetPeriod::Year),
            _ => None,
        }
    }
}

/// A user of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Unique within the tenant.
    pub name: String,
    /// Roles held.
    pub roles: Vec<Role>,
    /// E-mail for notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone for SMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Orders above this need user-specific approval (R1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_limit_minor: Option<Minor>,
    /// Budget per period (R1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_minor: Option<Minor>,
    /// Budget period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_period: Option<BudgetPeriod>,
}

impl User {
    /// The user as an acting person.
    pub fn actor(&self) -> Actor {
        Actor { name: self.name.clone(), roles: self.roles.iter().cloned().collect() }
    }
}

/// A cost center and its manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostCenter {
    /// Code, unique within the tenant.
    pub code: String,
    /// Manager's user name.
    pub manager: String,
    /// Yearly budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_minor: Option<Minor>,
}

/// Who a bearer token belongs to.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The tenant; every query of the request is scoped to it.
    pub tenant: Tenant,
    /// The user.
    pub user: User,
    /// Whether this credential may do critical actions now: a token marked for them by an
    /// admin who passed the second factor (or the operator), or a dashboard session that passed
    /// the second factor in the last few minutes.
    pub critical: bool,
}
