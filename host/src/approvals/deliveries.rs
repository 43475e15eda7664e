//! The admin's view of deliveries: troubled ones listed, dead ones re-driven.

use super::access::require_role;
use super::{ApprovalError, Approvals};
use crate::domain::actor::roles;
use crate::domain::directory::Principal;
use crate::store::audit;
use crate::store::deliveries::{self, Delivery, Listing};
use chrono::Utc;

impl Approvals {
    /// A tenant's deliveries for its admin: by default the troubled ones (retrying or dead).
    pub async fn deliveries(
        &self,
        p: &Principal,
        which: Listing,
        limit: usize,
        before: Option<String>,
    ) -> Result<Vec<Delivery>, ApprovalError> {
        require_role(p, &[roles::ADMIN], "reading deliveries")?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| deliveries::list(c, &tenant_id, which, limit, before.as_deref())).await?)
    }

    /// Re-drives a dead or retrying delivery now, with a fresh set of attempts. Audited.
    pub async fn redrive(&self, p: &Principal, id: &str) -> Result<Delivery, ApprovalError> {
        require_role(p, &[roles::ADMIN], "re-driving deliveries")?;
        let (caller, id) = (p.clone(), id.to_string());
        self.store
            .write(move |c| -> Result<Delivery, ApprovalError> {
                let tenant_id = &caller.tenant.id;
                let now = Utc::now();
                let Some(before) = deliveries::get(c, tenant_id, &id)? else {
                    return Err(ApprovalError::NotFound(format!("no delivery '{id}' here; list them with GET /v1/admin/deliveries")));
                };
                if !deliveries::redrive(c, tenant_id, &id, now)? {
                    return Err(ApprovalError::InvalidState(format!("delivery '{id}' was already delivered; there is nothing to re-drive")));
                }
                let data = serde_json::json!({"delivery": id, "channel": before.channel, "event": before.event, "attempts_before": before.attempts, "last_error": before.last_error});
                audit::append(c, tenant_id, now, &caller.user.name, "delivery_redriven", before.order_id.as_deref(), data)?;
                deliveries::get(c, tenant_id, &id)?.ok_or_else(|| ApprovalError::NotFound(format!("no delivery '{id}' here")))
            })
            .await
    }
}
