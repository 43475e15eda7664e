//! Delegation (R6): an approver lends their authority to a colleague for a time window. The
//! use cases here grant, list and end delegations; deciding under one happens in
//! [`Approvals::decide`], the inbox shows what a delegate may decide.

use super::{ApprovalError, Approvals, invalid};
use crate::domain::delegation::Delegation;
use crate::domain::directory::Principal;
use crate::store::directory;
use crate::store::{audit, delegations};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The body of `POST /v1/delegations`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDelegation {
    /// The user who decides in the caller's place.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]*[A-Za-z0-9_@-][A-Za-z0-9._@-]*$")]
    pub delegate: String,
    /// Start (RFC 3339); now when absent.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339).
    pub until: DateTime<Utc>,
}

impl Approvals {
    /// The caller lends their authority to `delegate` for a window. Audited.
    pub async fn delegate(&self, p: &Principal, body: NewDelegation) -> Result<Delegation, ApprovalError> {
        let now = Utc::now();
        let d = Delegation::new(
            uuid::Uuid::now_v7().to_string(),
            &p.user.name,
            &body.delegate,
            body.from,
            body.until,
            now,
        )?;
        let caller = p.clone();
        self.store
            .write(move |c| -> Result<Delegation, ApprovalError> {
                let tenant_id = &caller.tenant.id;
                if directory::user(c, tenant_id, &d.delegate)?.is_none() {
                    return Err(invalid(
                        "delegate",
                        format!("there is no user '{}' in your tenant; name an existing user", d.delegate),
                    ));
                }
                delegations::insert(c, tenant_id, &d)?;
                let data = serde_json::json!({"id": d.id, "delegate": d.delegate, "from": d.from, "until": d.until});
                audit::append(c, tenant_id, now, &caller.user.name, "delegation_granted", None, data)?;
                Ok(d)
            })
            .await
    }

    /// The delegations the caller gave or received that have not ended yet.
    pub async fn delegations(&self, p: &Principal) -> Result<Vec<Delegation>, ApprovalError> {
        let (tenant_id, user) = (p.tenant.id.clone(), p.user.name.clone());
        Ok(self.store.read(move |c| delegations::current_of(c, &tenant_id, &user, Utc::now())).await?)
    }

    /// One of the caller's delegations, given or received, that has not ended.
    pub async fn delegation(&self, p: &Principal, id: &str) -> Result<Delegation, ApprovalError> {
        self.delegations(p).await?.into_iter().find(|d| d.id == id).ok_or_else(|| {
            ApprovalError::NotFound(format!(
                "you have no running delegation '{id}'; list yours with GET /v1/delegations"
            ))
        })
    }

    /// The delegator ends a delegation early. Audited.
    pub async fn end_delegation(&self, p: &Principal, id: &str) -> Result<(), ApprovalError> {
        let (caller, id) = (p.clone(), id.to_string());
        let now = Utc::now();
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                let tenant_id = &caller.tenant.id;
                if !delegations::end(c, tenant_id, &id, &caller.user.name, now)? {
                    return Err(ApprovalError::NotFound(format!(
                        "you have no running delegation '{id}'; list yours with GET /v1/delegations"
                    )));
                }
                audit::append(
                    c,
                    tenant_id,
                    now,
                    &caller.user.name,
                    "delegation_ended",
                    None,
                    serde_json::json!({"id": id}),
                )?;
                Ok(())
            })
            .await
    }
}
