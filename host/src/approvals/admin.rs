//! The tenant's administration: tenants, users, cost centers, settings, scripts and the
//! extensions the tenant enables.

use super::access::{require_role, require_step_up};
use super::{ApprovalError, Approvals, invalid};
use crate::domain::actor::{MAX_DORMANT_AFTER_DAYS, Policy, roles};
use crate::domain::audit::timestamp;
use crate::domain::contact;
use crate::domain::directory::{BudgetPeriod, CostCenter, Principal, Tenant, User};
use crate::domain::money::{MAX_AMOUNT_MINOR, Minor};
use crate::domain::order::{check_json_depth, has_float};
use crate::engine::Step;
use crate::store::directory;
use crate::store::extensions::{self, ExtensionSetting};
use crate::store::{StoreError, audit};
use chrono::Utc;
use serde::Serialize;

/// Most bytes of script source one tenant may keep: every evaluation compiles the tenant's
/// scripts from a cache shared by all tenants, and this keeps one tenant from filling it.
pub const MAX_TENANT_SCRIPT_BYTES: usize = 1024 * 1024;

/// A user to create (`POST /v1/admin/users` in the API).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// 1-64 letters, digits, `.`, `_`, `-` or `@`.
    pub name: String,
    /// Roles held; at least one.
    pub roles: Vec<crate::domain::actor::Role>,
    /// E-mail for notifications.
    pub email: Option<String>,
    /// Phone (E.164) for SMS.
    pub phone: Option<String>,
    /// Orders above this need user-specific approval.
    pub spend_limit_minor: Option<Minor>,
    /// Budget per period.
    pub budget_minor: Option<Minor>,
    /// `month` (default when a budget is given), `quarter` or `year`.
    pub budget_period: Option<BudgetPeriod>,
}

impl NewUser {
    /// A user with these roles and no contact, limit or budget.
    pub fn with_roles(name: &str, roles: Vec<crate::domain::actor::Role>) -> NewUser {
        NewUser {
            name: name.into(),
            roles,
            email: None,
            phone: None,
            spend_limit_minor: None,
            budget_minor: None,
            budget_period: None,
        }
    }
}

/// A cost center to create.
#[derive(Debug, Clone)]
pub struct NewCostCenter {
    /// Code, unique within the tenant.
    pub code: String,
    /// Manager's user name; the user must exist.
    pub manager: String,
    /// Yearly budget.
    pub budget_minor: Option<Minor>,
}

pub use crate::store::extensions::ExtensionUpdate;

/// A change of tenant settings; a setting left out stays as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    /// One person decides at most one stage of an order (R7).
    pub one_stage_per_person: Option<bool>,
    /// Days without activity after which a user is dormant in the access review.
    pub dormant_after_days: Option<u32>,
    /// Roles that must set up a second factor.
    pub second_factor_roles: Option<Vec<crate::domain::actor::Role>>,
    /// The total above which approving needs a fresh second factor (`Some(None)`: off).
    pub step_up_above_minor: Option<Option<Minor>>,
}

/// Result of installing a script.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScriptInstalled {
    /// Extension name.
    pub name: String,
    /// SHA-256 of the source.
    pub code_hash: String,
    /// Whether an earlier version was replaced.
    pub replaced: bool,
}

fn check_name(field: &str, s: &str, extra: &[char]) -> Result<(), ApprovalError> {
    // Not dots alone: a name is a path segment (`/v1/admin/users/{name}`), and `.` or `..` there
    // would be read as this folder or the one above it.
    let ok = (1..=64).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
        && s.chars().any(|c| c != '.');
    if ok {
        Ok(())
    } else {
        Err(invalid(field, format!("'{s}' must be 1-64 letters, digits or any of {extra:?}, not dots alone")))
    }
}

fn check_amount(field: &str, v: Option<Minor>) -> Result<(), ApprovalError> {
    match v {
        Some(n) if !(0..=MAX_AMOUNT_MINOR).contains(&n) => {
            Err(invalid(field, format!("must be 0 to {MAX_AMOUNT_MINOR} (minor units), got {n}")))
        }
        _ => Ok(()),
    }
}

impl Approvals {
    /// Creates a tenant with its first user `admin` and returns the admin's token.
    pub async fn create_tenant(&self, name: &str) -> Result<(Tenant, String), ApprovalError> {
        check_name("name", name, &['-', '_', '.'])?;
        let token = directory::new_token()?;
        let name = name.to_string();
        let t2 = token.clone();
        let tenant = self
            .store
            .write(move |c| -> Result<Tenant, ApprovalError> {
                if directory::tenant_by_name(c, &name)?.is_some() {
                    return Err(ApprovalError::Conflict(format!(
                        "a tenant named '{name}' already exists; pick another name"
                    )));
                }
                let tenant = directory::create_tenant(c, &name)?;
                let admin = User {
                    name: "admin".into(),
                    roles: vec![roles::ADMIN.parse().map_err(|_| invalid("roles", "bad role"))?],
                    email: None,
                    phone: None,
                    spend_limit_minor: None,
                    budget_minor: None,
                    budget_period: None,
                };
                directory::insert_user(c, &tenant.id, &admin)?;
                // The operator's token: marked for critical actions.
                directory::insert_token(c, &tenant.id, "admin", &t2, true)?;
                audit::append(
                    c,
                    &tenant.id,
                    Utc::now(),
                    "system",
                    "tenant_created",
                    None,
                    serde_json::json!({"name": name}),
                )?;
                audit::append(
                    c,
                    &tenant.id,
                    Utc::now(),
                    "system",
                    "user_created",
                    None,
                    serde_json::json!({"name": "admin", "roles": ["admin"]}),
                )?;
                Ok(tenant)
            })
            .await?;
        Ok((tenant, token))
    }

    /// Creates a user and returns it with its bearer token (shown once; only its hash is kept).
    pub async fn create_user(&self, p: &Principal, body: NewUser) -> Result<(User, String), ApprovalError> {
        require_role(p, &[roles::ADMIN], "creating users")?;
        require_step_up(p, "creating a user")?;
        check_name("name", &body.name, &['-', '_', '.', '@'])?;
        if body.roles.is_empty() {
            return Err(invalid("roles", "give the user at least one role, e.g. [\"requester\"]"));
        }
        check_amount("spend_limit_minor", body.spend_limit_minor)?;
        check_amount("budget_minor", body.budget_minor)?;
        if let Some(e) = &body.email {
            contact::check_email(e).map_err(|e| invalid("email", e.to_string()))?;
        }
        if let Some(ph) = &body.phone {
            contact::check_phone(ph).map_err(|e| invalid("phone", e.to_string()))?;
        }
        let mut roles = body.roles.clone();
        roles.sort();
        roles.dedup();
        let user = User {
            name: body.name.clone(),
            roles,
            email: body.email,
            phone: body.phone,
            spend_limit_minor: body.spend_limit_minor,
            budget_minor: body.budget_minor,
            budget_period: body.budget_minor.map(|_| body.budget_period.unwrap_or(BudgetPeriod::Month)),
        };
        let token = directory::new_token()?;
        let (tenant_id, actor, u, t) = (p.tenant.id.clone(), p.user.name.clone(), user.clone(), token.clone());
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                if directory::name_taken(c, &tenant_id, &u.name)? {
                    return Err(ApprovalError::Conflict(format!(
                        "a user named '{}' already exists in this tenant (a disabled user keeps the name)",
                        u.name
                    )));
                }
                directory::insert_user(c, &tenant_id, &u)?;
                directory::insert_token(c, &tenant_id, &u.name, &t, false)?;
                audit::append(
                    c,
                    &tenant_id,
                    Utc::now(),
                    &actor,
                    "user_created",
                    None,
                    serde_json::to_value(&u).unwrap_or_default(),
                )?;
                Ok(())
            })
            .await?;
        Ok((user, token))
    }

    /// Creates a cost center; its manager must be a user of the tenant.
    pub async fn create_cost_center(&self, p: &Principal, body: NewCostCenter) -> Result<CostCenter, ApprovalError> {
        require_role(p, &[roles::ADMIN], "creating cost centers")?;
        // Naming a cost center's manager gives that person approval authority.
        require_step_up(p, "creating a cost center")?;
        check_name("code", &body.code, &['-', '_', '.'])?;
        check_amount("budget_minor", body.budget_minor)?;
        let cc = CostCenter { code: body.code, manager: body.manager, budget_minor: body.budget_minor };
        let (tenant_id, actor, c2) = (p.tenant.id.clone(), p.user.name.clone(), cc.clone());
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                if directory::user(c, &tenant_id, &c2.manager)?.is_none() {
                    return Err(invalid(
                        "manager",
                        format!("no user '{}' in this tenant; create the user first", c2.manager),
                    ));
                }
                if directory::cost_center(c, &tenant_id, &c2.code)?.is_some() {
                    return Err(ApprovalError::Conflict(format!("cost center '{}' already exists", c2.code)));
                }
                directory::insert_cost_center(c, &tenant_id, &c2)?;
                audit::append(
                    c,
                    &tenant_id,
                    Utc::now(),
                    &actor,
                    "cost_center_created",
                    None,
                    serde_json::to_value(&c2).unwrap_or_default(),
                )?;
                Ok(())
            })
            .await?;
        Ok(cc)
    }

    /// The tenant's settings (admin).
    pub fn settings(&self, p: &Principal) -> Result<Policy, ApprovalError> {
        require_role(p, &[roles::ADMIN], "reading settings")?;
        Ok(p.tenant.policy.clone())
    }

    /// Changes tenant settings.
    pub async fn update_settings(&self, p: &Principal, body: SettingsUpdate) -> Result<Policy, ApprovalError> {
        require_role(p, &[roles::ADMIN], "changing settings")?;
        require_step_up(p, "changing settings")?;
        if let Some(d) = body.dormant_after_days
            && !(1..=MAX_DORMANT_AFTER_DAYS).contains(&d)
        {
            return Err(invalid("dormant_after_days", format!("give 1 to {MAX_DORMANT_AFTER_DAYS} days, not {d}")));
        }
        if let Some(Some(limit)) = body.step_up_above_minor {
            check_amount("step_up_above_minor", Some(limit))?;
        }
        let (tenant_id, actor) = (p.tenant.id.clone(), p.user.name.clone());
        self.store
            .write(move |c| -> Result<Policy, ApprovalError> {
                let tenant = directory::tenant(c, &tenant_id)?
                    .ok_or_else(|| ApprovalError::NotFound("tenant not found".into()))?;
                let mut policy = tenant.policy;
                if let Some(v) = body.one_stage_per_person {
                    policy.one_stage_per_person = v;
                }
                if let Some(d) = body.dormant_after_days {
                    policy.dormant_after_days = d;
                }
                if let Some(mut roles) = body.second_factor_roles {
                    roles.sort();
                    roles.dedup();
                    policy.second_factor_roles = roles;
                }
                if let Some(limit) = body.step_up_above_minor {
                    policy.step_up_above_minor = limit;
                }
                directory::save_policy(c, &tenant_id, &policy)?;
                audit::append(
                    c,
                    &tenant_id,
                    Utc::now(),
                    &actor,
                    "settings_changed",
                    None,
                    serde_json::to_value(&policy).unwrap_or_default(),
                )?;
                Ok(policy)
            })
            .await
            .inspect(|_| self.principals.forget_tenant(&p.tenant.id))
    }

    /// Installs or replaces a tenant script after checking it compiles.
    pub async fn add_script(&self, p: &Principal, name: &str, source: &str) -> Result<ScriptInstalled, ApprovalError> {
        require_role(p, &[roles::ADMIN], "installing scripts")?;
        require_step_up(p, "installing a script")?;
        check_name("name", name, &['-', '_'])?;
        let n = name.to_string();
        if self.store.read(move |c| crate::store::plugins::get(c, &n)).await?.is_some() {
            return Err(ApprovalError::Conflict(format!(
                "a plugin named '{name}' is installed on this host; give the script another name"
            )));
        }
        // Compiled into the runtime's cache, so the tenant's next evaluation does not compile it
        // again.
        let hash = self.runtimes.rhai.step(&p.tenant.id, name, source)?.code_hash().to_string();
        let (tenant_id, actor, name, source, h) =
            (p.tenant.id.clone(), p.user.name.clone(), name.to_string(), source.to_string(), hash.clone());
        let n2 = name.clone();
        let replaced = self
            .store
            .write(move |c| -> Result<bool, ApprovalError> {
                let others = extensions::script_bytes(c, &tenant_id, &n2)?;
                if others.saturating_add(source.len()) > MAX_TENANT_SCRIPT_BYTES {
                    return Err(invalid(
                        "source",
                        format!(
                            "the tenant's scripts would hold {} bytes of source, at most {MAX_TENANT_SCRIPT_BYTES}: shorten this script or replace a large one",
                            others.saturating_add(source.len())
                        ),
                    ));
                }
                let now = Utc::now();
                let replaced = extensions::upsert_script(c, &tenant_id, &n2, &source, &h, &timestamp(now))?;
                audit::append(
                    c,
                    &tenant_id,
                    now,
                    &actor,
                    "script_installed",
                    None,
                    serde_json::json!({"name": n2, "code_hash": h, "replaced": replaced}),
                )?;
                Ok(replaced)
            })
            .await?;
        self.policy_changed();
        Ok(ScriptInstalled { name, code_hash: hash, replaced })
    }

    /// The tenant's extensions with their settings.
    pub async fn extensions(&self, p: &Principal) -> Result<Vec<ExtensionSetting>, ApprovalError> {
        require_role(p, &[roles::ADMIN], "listing extensions")?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| extensions::settings(c, &tenant_id)).await?)
    }

    /// A page of the tenant's users by name (admin), each with whether they have a password.
    pub async fn users(&self, p: &Principal, after: &str, limit: usize) -> Result<Vec<(User, bool)>, ApprovalError> {
        require_role(p, &[roles::ADMIN], "listing users")?;
        let (tenant_id, after) = (p.tenant.id.clone(), after.to_string());
        Ok(self.store.read(move |c| directory::users(c, &tenant_id, &after, limit.clamp(1, 500))).await?)
    }

    /// The tenant's cost centers by code (admin), at most 1000.
    pub async fn cost_centers(&self, p: &Principal) -> Result<Vec<CostCenter>, ApprovalError> {
        require_role(p, &[roles::ADMIN], "listing cost centers")?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| directory::cost_centers(c, &tenant_id, 1000)).await?)
    }

    /// One cost center (admin).
    pub async fn cost_center(&self, p: &Principal, code: &str) -> Result<CostCenter, ApprovalError> {
        require_role(p, &[roles::ADMIN], "reading cost centers")?;
        let (tenant_id, c0) = (p.tenant.id.clone(), code.to_string());
        self.store.read(move |c| directory::cost_center(c, &tenant_id, &c0)).await?.ok_or_else(|| {
            ApprovalError::NotFound(format!("no cost center '{code}' here; create it with POST /v1/admin/cost-centers"))
        })
    }

    /// One installed extension with this tenant's setting (admin).
    pub async fn extension(&self, p: &Principal, name: &str) -> Result<ExtensionSetting, ApprovalError> {
        self.extensions(p).await?.into_iter().find(|e| e.name == name).ok_or_else(|| {
            ApprovalError::NotFound(format!("no extension '{name}' here; GET /v1/admin/extensions lists them"))
        })
    }

    /// Enables, disables, moves or configures an extension for the tenant.
    pub async fn update_extension(
        &self,
        p: &Principal,
        name: &str,
        body: ExtensionUpdate,
    ) -> Result<ExtensionSetting, ApprovalError> {
        require_role(p, &[roles::ADMIN], "configuring extensions")?;
        require_step_up(p, "changing an extension, its configuration or its grants")?;
        self.configure_extension(&p.tenant.id, &p.user.name, name, body).await
    }

    /// Enables, disables, moves or configures an extension for a tenant, on behalf of `actor`
    /// (an admin, or the operator), whose name the audit entry carries.
    pub(super) async fn configure_extension(
        &self,
        tenant_id: &str,
        actor: &str,
        name: &str,
        body: ExtensionUpdate,
    ) -> Result<ExtensionSetting, ApprovalError> {
        if let Some(cfg) = &body.config {
            if !cfg.is_object() {
                return Err(invalid("config", "must be a JSON object"));
            }
            if has_float(cfg) {
                return Err(invalid(
                    "config",
                    "numbers must be integers: express amounts in minor units and rates in basis points",
                ));
            }
            if serde_json::to_vec(cfg).map(|v| v.len()).unwrap_or(usize::MAX) > 64 * 1024 {
                return Err(invalid("config", "must be at most 64 KiB"));
            }
            check_json_depth("config", cfg.as_object().into_iter().flat_map(|o| o.values()))?;
        }
        if let Some(pos) = body.position
            && !(0..=1_000_000).contains(&pos)
        {
            return Err(invalid("position", "must be between 0 and 1000000"));
        }
        // A plugin's configuration and grants are checked against its manifest.
        let n = name.to_string();
        let plugin = self.store.read(move |c| crate::store::plugins::get(c, &n)).await?;
        if let Some(record) = &plugin {
            let manifest: crate::runtime::manifest::Manifest = serde_json::from_value(record.manifest.clone())
                .map_err(|e| {
                    ApprovalError::Extension(format!(
                        "the stored manifest of '{name}' is unreadable ({e}); reinstall the plugin"
                    ))
                })?;
            if let Some(cfg) = &body.config {
                manifest.effective_config(cfg).map_err(|e| invalid("config", e.to_string()))?;
            }
            if let Some(g) = &body.grants {
                if let Some(o) = g.http.iter().find(|o| !manifest.capabilities.declares_origin(o)) {
                    return Err(invalid(
                        "grants.http",
                        format!(
                            "'{o}' is not among the origins the plugin's manifest declares: {:?}",
                            manifest.capabilities.http
                        ),
                    ));
                }
                if g.mail && !manifest.capabilities.mail {
                    return Err(invalid("grants.mail", "the plugin's manifest does not ask for mail"));
                }
            }
            if manifest.kind == crate::runtime::manifest::Kind::Native
                && body.enabled
                && !self.runtimes.options().allow_native
            {
                return Err(ApprovalError::Forbidden(
                    "native plugins are disabled on this host; the operator must allow them".into(),
                ));
            }
        } else if body.grants.as_ref().is_some_and(|g| !g.http.is_empty() || g.mail) {
            return Err(invalid("grants", "scripts get no capabilities: they are pure approval steps"));
        }
        let (tenant_id, actor, name) = (tenant_id.to_string(), actor.to_string(), name.to_string());
        let is_plugin = plugin.is_some();
        if is_plugin && body.upgrade {
            return Err(ApprovalError::InvalidState(format!(
                "plugin versions are host-wide: the operator takes up the version on offer with `greenlight plugin upgrade {name}`"
            )));
        }
        // A script of the catalog the tenant enables for the first time, or asks to upgrade, is
        // copied into the tenant's scripts, compiled first like any script.
        let mut body = body;
        let copy = if is_plugin {
            None
        } else {
            let (t, n) = (tenant_id.clone(), name.clone());
            let (current, offered) = self
                .store
                .read(move |c| -> Result<_, StoreError> {
                    let current = extensions::settings(c, &t)?.into_iter().find(|s| s.name == n);
                    Ok((current, crate::store::catalog::script(c, &n)?))
                })
                .await?;
            match (current, offered) {
                (Some(s), Some(_)) if s.offered && !body.enabled => {
                    return Err(ApprovalError::InvalidState(format!(
                        "'{name}' is offered by the host's catalog: enable it to add it to this organization"
                    )));
                }
                (Some(s), Some(cat)) if s.offered => {
                    if body.config.is_none() {
                        body.config = Some(cat.config.clone());
                    }
                    Some(cat)
                }
                (Some(s), Some(cat)) if body.upgrade => {
                    if s.upgrade.is_none() {
                        return Err(ApprovalError::InvalidState(format!(
                            "'{name}' is the catalog's version already; there is nothing to upgrade"
                        )));
                    }
                    Some(cat)
                }
                (_, _) if body.upgrade => {
                    return Err(ApprovalError::InvalidState(format!(
                        "'{name}' did not come from the host's catalog; replace it with POST /v1/admin/scripts"
                    )));
                }
                _ => None,
            }
        };
        if let Some(cat) = &copy {
            self.runtimes.rhai.step(&tenant_id, &cat.name, &cat.source)?;
        }
        self.store
            .write(move |c| -> Result<ExtensionSetting, ApprovalError> {
                if let Some(cat) = &copy {
                    let now = Utc::now();
                    let replaced = extensions::upsert_script(c, &tenant_id, &cat.name, &cat.source, &cat.hash, &timestamp(now))?;
                    crate::store::catalog::adopted(c, &tenant_id, &cat.name, &cat.hash)?;
                    audit::append(
                        c,
                        &tenant_id,
                        now,
                        &actor,
                        "script_installed",
                        None,
                        serde_json::json!({"name": cat.name, "code_hash": cat.hash, "replaced": replaced, "from_catalog": true}),
                    )?;
                } else if !is_plugin && !extensions::script_exists(c, &tenant_id, &name)? {
                    return Err(ApprovalError::NotFound(format!(
                        "no extension '{name}' is installed; see GET /v1/admin/extensions"
                    )));
                }
                extensions::update_setting(c, &tenant_id, &name, &body)?;
                let setting = extensions::settings(c, &tenant_id)?
                    .into_iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| ApprovalError::NotFound(format!("no extension '{name}'")))?;
                audit::append(
                    c,
                    &tenant_id,
                    Utc::now(),
                    &actor,
                    "extension_configured",
                    None,
                    serde_json::to_value(&setting).unwrap_or_default(),
                )?;
                Ok(setting)
            })
            .await
            .inspect(|_| self.policy_changed())
    }
}
