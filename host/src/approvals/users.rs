//! People leaving and changing jobs: the access review (who holds which role, who lends
//! authority to whom, who has gone dormant), changing roles, disabling and enabling users, and
//! issuing tokens.
//! Every one of these is in the audit chain, the review included (who looked, when).

use super::access::{require_role, require_step_up};
use super::{ApprovalError, Approvals};
use crate::domain::access_review::AccessReview;
use crate::domain::actor::{Role, roles};
use crate::domain::directory::Principal;
use crate::store::directory::{self, Disabled};
use crate::store::{StoreError, access_review, audit};
use chrono::Utc;

fn no_user(name: &str) -> ApprovalError {
    ApprovalError::NotFound(format!("no user '{name}' here; check the name (GET /v1/admin/access-review lists them)"))
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
                // Two admins disabling each other at once: the second finds itself disabled.
                if directory::user(c, &tenant_id, &actor)?.is_none() {
                    return Err(ApprovalError::Forbidden(format!("{actor} is disabled and can disable nobody")));
                }
                let done = directory::disable_user(c, &tenant_id, &name, now)?.ok_or_else(|| no_user(&name))?;
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
    /// next request, what they gain needs its second factor if the tenant asks for one. An admin
    /// cannot take the admin role from themselves (so an admin always remains). Audited as
    /// `roles_changed` with the roles before and after; returns both.
    pub async fn change_roles(
        &self,
        p: &Principal,
        name: &str,
        roles: Vec<Role>,
    ) -> Result<(Vec<Role>, Vec<Role>), ApprovalError> {
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
        if name == p.user.name && !roles.contains(&Role::admin()) {
            return Err(ApprovalError::Conflict(
                "you cannot take the admin role from yourself; ask another admin".into(),
            ));
        }
        let (tenant_id, actor, name) = (p.tenant.id.clone(), p.user.name.clone(), name.to_string());
        let after = roles.clone();
        let before = self
            .store
            .write(move |c| -> Result<Vec<Role>, ApprovalError> {
                let before = directory::set_roles(c, &tenant_id, &name, &roles)?.ok_or_else(|| no_user(&name))?;
                if before != roles {
                    let data = serde_json::json!({"user": name, "before": before, "roles": roles});
                    audit::append(c, &tenant_id, Utc::now(), &actor, "roles_changed", None, data)?;
                }
                Ok(before)
            })
            .await?;
        self.principals.forget_tenant(&p.tenant.id);
        Ok((before, after))
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
                    return Err(ApprovalError::NotFound(format!(
                        "no disabled user '{name}' here; check the name (GET /v1/admin/access-review lists them)"
                    )));
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
