//! Reading the record: customer authorization certificates, an order's audit trail, the
//! tenant's chain page by page, and its verification.

use super::access::{OVERSEERS, require_role, sees_all};
use super::{ApprovalError, Approvals};
use crate::domain::actor::roles;
use crate::domain::audit::{AuditEntry, VerifyReport};
use crate::domain::authorization::Authorization;
use crate::domain::directory::Principal;
use crate::store::{audit, authorizations};

impl Approvals {
    /// Customer authorization certificates (R4), newest first; for the roles that oversee orders.
    pub async fn authorizations(
        &self,
        p: &Principal,
        customer_id: Option<String>,
        order_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<Authorization>, ApprovalError> {
        if !sees_all(p) {
            return Err(ApprovalError::Forbidden(format!(
                "reading authorization certificates needs one of the roles: {}",
                OVERSEERS.join(", ")
            )));
        }
        let tenant_id = p.tenant.id.clone();
        Ok(self
            .store
            .read(move |c| authorizations::list(c, &tenant_id, customer_id.as_deref(), order_id.as_deref(), limit))
            .await?)
    }

    /// An order's audit trail, oldest first.
    pub async fn order_audit(&self, p: &Principal, id: &str) -> Result<Vec<AuditEntry>, ApprovalError> {
        let order = self.load_visible(p, id).await?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| audit::for_order(c, &tenant_id, &order.id)).await?)
    }

    /// A page of the tenant's audit log (auditor or admin).
    pub async fn audit_page(
        &self,
        p: &Principal,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ApprovalError> {
        require_role(p, &[roles::AUDITOR, roles::ADMIN], "reading the audit log")?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| audit::page(c, &tenant_id, after_seq, limit)).await?)
    }

    /// Verifies the tenant's audit chain (auditor or admin).
    pub async fn audit_verify(&self, p: &Principal) -> Result<VerifyReport, ApprovalError> {
        require_role(p, &[roles::AUDITOR, roles::ADMIN], "verifying the audit log")?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| audit::verify(c, &tenant_id)).await?)
    }
}
