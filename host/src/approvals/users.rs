//! People leaving and changing jobs: the access review (who holds which role, who lends
//! authority to whom, who has gone dormant), changing roles, disabling and enabling users, and
//! issuing tokens.
//! Every one of these is in the audit chain, the review included (who looked, when).

use super::access::{require_role, require_step_up};
use super::{ApprovalError, Approvals};
use crate::domain::access_review::{AccessReview, ReviewedUser};
use crate::domain::actor::{Role, roles};
use crate::domain::directory::Principal;
use crate::store::directory::{self, Disabled, RolesChanged};
use crate::store::{StoreError, access_review, audit};
use chrono::Utc;

fn no_user(name: &str) -> ApprovalError {
    ApprovalError::NotFound(format!("no user '{name}' here; check the name (GET /v1/admin/access-review lists them)"))
}

/// Why a change found no user of that name in the state it needs: there is none at all (404), or
/// they are in the other state (409, `conflict` says what to do).
fn missing_or(
    c: &rusqlite::Connection,
    tenant_id: &str,
    name: &str,
    conflict: impl FnOnce() -> String,
) -> Result<ApprovalError, StoreError> {
    Ok(if directory::name_taken(c, tenant_id, name)? { ApprovalError::Conflict(conflict()) } else { no_user(name) })
}

/// The actor is still an enabled admin, read in the change itself.
fn still_admin(c: &rusqlite::Connection, tenant_id: &str, actor: &str, what: &str) -> Result<(), ApprovalError> {
    let admin = Role::admin();
    match directory::user(c, tenant_id, actor)? {
        Some(u) if u.roles.contains(&admin) => Ok(()),
        Some(_) => Err(ApprovalError::Forbidden(format!("{actor} is no longer an admin and cannot {what}"))),
        None => Err(ApprovalError::Forbidden(format!("{actor} is disabled and cannot {what}"))),
    }
}

impl Approvals {
    /// The tenant's access review now; `format` is recorded with the `access_reviewed` audit
    /// entry (`json` or `csv`), so the chain shows each periodic review.
    pub async fn access_review(&self, p: &Principal, format: &'static str) -> Result<AccessReview, ApprovalError> {
        require_role(p, &[roles::ADMIN, roles::AUDITOR], "the access review")?;
        let now = Utc::now();
        let (tenant_id, days) = (p.tenant.id.clone(), p.tenant.policy.dormant_after_days);
        let users = self.store.read(move |c| access_review::users(c, &tenant_id, now, days)).await?;
        let review = AccessReview::new(now, days, users);
        let (tenant_id, actor) = (p.tenant.id.clone(), p.user.name.clone());
        let data = serde_json::json!({
            "users": review.users.len(), "dormant": review.dormant, "disabled": review.disabled, "format": format,
        });
        self.store
            .write(move |c| audit::append(c, &tenant_id, now, &actor, "access_reviewed", None, data).map(|_| ()))
            .await?;
        Ok(review)
    }

    /// One user as the access review shows them (admin, auditor). A look at one person, not a
    /// review of the tenant: not audited.
    pub async fn reviewed_user(&self, p: &Principal, name: &str) -> Result<ReviewedUser, ApprovalError> {
        require_role(p, &[roles::ADMIN, roles::AUDITOR], "reading users")?;
        let now = Utc::now();
        let (tenant_id, days) = (p.tenant.id.clone(), p.tenant.policy.dormant_after_days);
        let n = name.to_string();
        let user = self.store.read(move |c| access_review::user(c, &tenant_id, &n, now, days)).await?;
        user.ok_or_else(|| no_user(name))
    }

    /// Disables a user at once: their tokens and sessions stop working (the next request is a
    /// 401), the delegations they gave or received end, and they no longer count for their
    /// roles. An admin cannot disable themselves (so an enabled admin always remains).
    pub async fn disable_user(&self, p: &Principal, name: &str) -> Result<Disabled, ApprovalError> {
        require_role(p, &[roles::ADMIN], "disabling users")?;
        require_step_up(p, "disabling a user")?;
        if name == p.user.name {
            return Err(ApprovalError::Conflict("you cannot disable yourself; ask another admin".into()));
        }
        let (tenant_id, actor, name) = (p.tenant.id.clone(), p.user.name.clone(), name.to_string());
        let now = Utc::now();
        let done = self
            .store
            .write(move |c| -> Result<Disabled, ApprovalError> {
                // Two admins disabling (or demoting) each other at once: the second finds out here.
                still_admin(c, &tenant_id, &actor, "disable anyone")?;
                let Some(done) = directory::disable_user(c, &tenant_id, &name, now)? else {
                    return Err(missing_or(c, &tenant_id, &name, || {
                        format!("{name} is disabled already; nothing to do")
                    })?);
                };
                let mut data = serde_json::to_value(done).map_err(|e| StoreError::Internal(e.to_string()))?;
                if let Some(o) = data.as_object_mut() {
                    o.insert("user".into(), name.clone().into());
                }
                audit::append(c, &tenant_id, now, &actor, "user_disabled", None, data)?;
                Ok(done)
            })
            .await?;
        self.principals.forget_tenant(&p.tenant.id);
        Ok(done)
    }

    /// Gives an enabled user exactly `roles` (a mover): what they lose stops counting at their
    /// next request, what they gain needs its second factor if the tenant asks for one, and the
    /// delegations they gave end (they lent the old roles). Refused when it would leave the
    /// tenant without an admin, or take `cost_center_manager` from someone who still manages
    /// cost centers (their stages are decided by name). Audited as `roles_changed`.
    pub async fn change_roles(
        &self,
        p: &Principal,
        name: &str,
        roles: Vec<Role>,
    ) -> Result<RolesChanged, ApprovalError> {
        require_role(p, &[roles::ADMIN], "changing roles")?;
        require_step_up(p, "changing roles")?;
        let mut roles = roles;
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            return Err(super::invalid(
                "roles",
                "give the user at least one role, e.g. [\"requester\"]; to take all access away, disable the user",
            ));
        }
        if roles.len() > 32 {
            return Err(super::invalid("roles", "at most 32 roles"));
        }
        let (tenant_id, actor, name) = (p.tenant.id.clone(), p.user.name.clone(), name.to_string());
        let now = Utc::now();
        let changed = self
            .store
            .write(move |c| -> Result<RolesChanged, ApprovalError> {
                // Read again in the change: two admins demoting each other at once, or one just
                // demoted, find out here.
                still_admin(c, &tenant_id, &actor, "change roles")?;
                let managed = directory::managed_cost_centers(c, &tenant_id, &name)?;
                let manager = Role::try_from(roles::COST_CENTER_MANAGER.to_string()).ok();
                if !managed.is_empty() && manager.is_some_and(|m| !roles.contains(&m)) {
                    return Err(ApprovalError::Conflict(format!(
                        "{name} still manages the cost centers {}: give them another manager first, or keep the role",
                        managed.join(", ")
                    )));
                }
                let Some(changed) = directory::change_roles(c, &tenant_id, &name, &roles, now)? else {
                    return Err(missing_or(c, &tenant_id, &name, || {
                        format!(
                            "{name} is disabled: enable them first (POST /v1/admin/users/{name}/enable), then change their roles"
                        )
                    })?);
                };
                if directory::role_holders(c, &tenant_id, roles::ADMIN, "", 1)? == 0 {
                    return Err(ApprovalError::Conflict(format!(
                        "{name} is the last admin of the tenant: make someone else admin first"
                    )));
                }
                let data = serde_json::to_value(&changed).map_err(|e| StoreError::Internal(e.to_string()))?;
                audit::append(c, &tenant_id, now, &actor, "roles_changed", None, data)?;
                Ok(changed)
            })
            .await?;
        self.principals.forget_tenant(&p.tenant.id);
        Ok(changed)
    }

    /// Enables a disabled user with the roles on record. Nothing of before comes back: they need
    /// a new token or a password change to get in.
    pub async fn enable_user(&self, p: &Principal, name: &str) -> Result<(), ApprovalError> {
        require_role(p, &[roles::ADMIN], "enabling users")?;
        require_step_up(p, "enabling a user")?;
        let (tenant_id, actor, name) = (p.tenant.id.clone(), p.user.name.clone(), name.to_string());
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                if !directory::enable_user(c, &tenant_id, &name)? {
                    return Err(missing_or(c, &tenant_id, &name, || {
                        format!("{name} is enabled already; nothing to do")
                    })?);
                }
                let data = serde_json::json!({"user": name});
                audit::append(c, &tenant_id, Utc::now(), &actor, "user_enabled", None, data)?;
                Ok(())
            })
            .await?;
        self.principals.forget_tenant(&p.tenant.id);
        Ok(())
    }

    /// Issues a new bearer token to an enabled user (shown once; stored hashed); a `critical`
    /// one may do critical actions over the API.
    pub async fn issue_token(&self, p: &Principal, name: &str, critical: bool) -> Result<String, ApprovalError> {
        require_role(p, &[roles::ADMIN], "issuing tokens")?;
        require_step_up(p, "issuing a token")?;
        let token = directory::new_token()?;
        let (tenant_id, actor, name, t) = (p.tenant.id.clone(), p.user.name.clone(), name.to_string(), token.clone());
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                directory::user(c, &tenant_id, &name)?.ok_or_else(|| no_user(&name))?;
                directory::insert_token(c, &tenant_id, &name, &t, critical)?;
                let data = serde_json::json!({"user": name, "critical": critical});
                audit::append(c, &tenant_id, Utc::now(), &actor, "token_issued", None, data)?;
                Ok(())
            })
            .await?;
        Ok(token)
    }
}
