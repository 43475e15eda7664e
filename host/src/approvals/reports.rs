//! Reports (R10, R4): the summary of a period, for auditors and admins.

use super::access::require_role;
use super::{ApprovalError, Approvals};
use crate::domain::actor::roles;
use crate::domain::directory::Principal;
use crate::domain::report::{Summary, SummaryQuery};
use crate::store::reports;
use chrono::Utc;

impl Approvals {
    /// The summary of the tenant's orders over a period (auditor or admin).
    pub async fn summary(&self, p: &Principal, query: SummaryQuery) -> Result<Summary, ApprovalError> {
        require_role(p, &[roles::AUDITOR, roles::ADMIN], "reading reports")?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| reports::summary(c, &tenant_id, &query, Utc::now())).await?)
    }
}
