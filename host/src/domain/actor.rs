//! Who acts: users, their roles, and the tenant policy that constrains them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// A role name. The eight standard roles drive the HTTP permissions; tenants may add
/// their own (e.g. `it-security`) for approval stages, so this is a validated name, not an enum.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "approver", pattern = "^[a-z][a-z0-9_-]{0,31}$")]
pub struct Role(String);

/// The standard roles; each gates a part of the HTTP API.
pub mod roles {
    /// Creates and submits orders.
    pub const REQUESTER: &str = "requester";
    /// Decides user-specific (budget, spend-limit) stages.
    pub const APPROVER: &str = "approver";
    /// Manages one or more cost centers and decides their stages.
    pub const COST_CENTER_MANAGER: &str = "cost_center_manager";
    /// Reviews compliance stages.
    pub const COMPLIANCE: &str = "compliance";
    /// Reviews financial stages.
    pub const FINANCE: &str = "finance";
    /// Decides elevated-clearance stages.
    pub const EXECUTIVE: &str = "executive";
    /// Administers the tenant: users, extensions, settings, revocations.
    pub const ADMIN: &str = "admin";
    /// Reads and verifies the audit trail.
    pub const AUDITOR: &str = "auditor";
    /// All standard roles, for demo set-up and documentation.
    pub const ALL: [&str; 8] =
        [REQUESTER, APPROVER, COST_CENTER_MANAGER, COMPLIANCE, FINANCE, EXECUTIVE, ADMIN, AUDITOR];
}

/// Why a role name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid role name: use 1-32 lower-case letters, digits, '_' or '-', starting with a letter")]
pub struct BadRole(pub String);

impl Role {
    /// The tenant administrator role, the escalation target of last resort.
    pub fn admin() -> Role {
        Role(roles::ADMIN.to_string())
    }

    /// The role's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Role {
    type Error = BadRole;
    fn try_from(s: String) -> Result<Self, BadRole> {
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok { Ok(Role(s)) } else { Err(BadRole(s)) }
    }
}

impl std::str::FromStr for Role {
    type Err = BadRole;
    fn from_str(s: &str) -> Result<Self, BadRole> {
        Role::try_from(s.to_string())
    }
}

impl From<Role> for String {
    fn from(r: Role) -> String {
        r.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Role({})", self.0)
    }
}

/// A person acting on an order, as the token identified them. The state machine checks stage
/// eligibility and segregation of duties against this, never against anything the body says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user's name, unique within the tenant.
    pub name: String,
    /// The roles the user holds.
    pub roles: BTreeSet<Role>,
}

impl Actor {
    /// Builds an actor from a name and role names; invalid role names are skipped, since roles
    /// are validated when users are created.
    pub fn new<'a>(name: &str, roles: impl IntoIterator<Item = &'a str>) -> Actor {
        Actor { name: name.to_string(), roles: roles.into_iter().filter_map(|r| r.parse().ok()).collect() }
    }

    /// Whether the actor holds the role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.as_str() == role)
    }
}

/// Tenant-wide rules the state machine enforces (R7), and how the tenant guards access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// One person may decide at most one stage of an order (segregation of duties). On by default.
    pub one_stage_per_person: bool,
    /// Days without activity after which the access review flags a user dormant (1 to 3650;
    /// 90 by default).
    #[serde(default = "default_dormant_after_days")]
    pub dormant_after_days: u32,
    /// Roles whose holders must set up a second factor before they use the dashboard (admins by
    /// default).
    #[serde(default = "default_second_factor_roles")]
    #[schema(value_type = Vec<String>)]
    pub second_factor_roles: Vec<Role>,
    /// Approving a stage of an order whose total is above this many minor units is a critical
    /// action (a fresh second factor); none by default.
    #[serde(default)]
    pub step_up_above_minor: Option<crate::domain::money::Minor>,
}

fn default_second_factor_roles() -> Vec<Role> {
    vec![Role::admin()]
}

/// Longest dormancy period a tenant may set: ten years.
pub const MAX_DORMANT_AFTER_DAYS: u32 = 3_650;

fn default_dormant_after_days() -> u32 {
    90
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            one_stage_per_person: true,
            dormant_after_days: default_dormant_after_days(),
            second_factor_roles: default_second_factor_roles(),
            step_up_above_minor: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_validated() {
        assert!("approver".parse::<Role>().is_ok());
        assert!("it-security".parse::<Role>().is_ok());
        assert!("Approver".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
        assert!("1st".parse::<Role>().is_err());
        assert!("a".repeat(33).parse::<Role>().is_err());
    }

    #[test]
    fn standard_roles_are_valid_names() {
        for r in roles::ALL {
            assert!(r.parse::<Role>().is_ok(), "{r}");
        }
    }
}
