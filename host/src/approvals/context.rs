//! What the steps of an order see: the order, its requester with the budget used, its cost
//! center, and the tenant's directory for resolving approvers.

use crate::domain::audit::timestamp;
use crate::domain::directory::BudgetPeriod;
use crate::domain::money::MAX_AMOUNT_MINOR;
use crate::domain::order::Order;
use crate::domain::plan::MAX_QUORUM;
use crate::domain::step::{ContextOrder, CostCenterProfile, OrderContext, RequesterProfile};
use crate::engine::Directory;
use crate::store::directory;
use crate::store::orders::{self, Budget};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use rusqlite::Connection;
use std::cell::RefCell;
use std::collections::HashMap;

/// Start of the budget period containing `now`, as an audit-format timestamp.
pub fn period_start(period: BudgetPeriod, now: DateTime<Utc>) -> String {
    let month = match period {
        BudgetPeriod::Month => now.month(),
        BudgetPeriod::Quarter => (now.month() - 1) / 3 * 3 + 1,
        BudgetPeriod::Year => 1,
    };
    let start = Utc.with_ymd_and_hms(now.year(), month, 1, 0, 0, 0).single().unwrap_or(now);
    timestamp(start)
}

/// Why the context of an order could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A budget's used amount is beyond the largest amount; no step can judge it (fail closed).
    #[error(
        "the approved orders on {0} add up to more than the largest amount, {MAX_AMOUNT_MINOR} minor units; an admin must review them before this order can be evaluated"
    )]
    BudgetBeyondBounds(String),
}

/// Builds what the steps see. Reads only this tenant's data.
pub fn build_context(
    conn: &Connection,
    tenant_id: &str,
    order: &Order,
    now: DateTime<Utc>,
) -> Result<OrderContext, ContextError> {
    let user = directory::user(conn, tenant_id, &order.requester)?;
    let requester = match user {
        Some(u) => {
            let period = u.budget_period.unwrap_or(BudgetPeriod::Month);
            let used =
                orders::spent(conn, tenant_id, Budget::Requester(&u.name), &period_start(period, now), &order.id)?
                    .ok_or_else(|| ContextError::BudgetBeyondBounds(format!("the budget of {}", u.name)))?;
            RequesterProfile {
                name: u.name.clone(),
                roles: u.roles.iter().map(|r| r.to_string()).collect(),
                spend_limit_minor: u.spend_limit_minor,
                budget_minor: u.budget_minor,
                budget_period: u.budget_minor.map(|_| period.as_str().to_string()),
                budget_used_minor: used,
            }
        }
        None => RequesterProfile {
            name: order.requester.clone(),
            roles: Vec::new(),
            spend_limit_minor: None,
            budget_minor: None,
            budget_period: None,
            budget_used_minor: 0,
        },
    };
    let cost_center = match &order.input.cost_center {
        Some(code) => directory::cost_center(conn, tenant_id, code)?
            .map(|cc| -> Result<CostCenterProfile, ContextError> {
                let used = orders::spent(
                    conn,
                    tenant_id,
                    Budget::CostCenter(code),
                    &period_start(BudgetPeriod::Year, now),
                    &order.id,
                )?
                .ok_or_else(|| ContextError::BudgetBeyondBounds(format!("cost center {code}")))?;
                Ok(CostCenterProfile {
                    code: cc.code,
                    manager: cc.manager,
                    budget_minor: cc.budget_minor,
                    budget_used_minor: used,
                })
            })
            .transpose()?,
        None => None,
    };
    Ok(OrderContext {
        order: ContextOrder::new(&order.id, &order.requester, &order.input),
        subtotal_minor: order.subtotal_minor,
        requester,
        cost_center,
        customer: None,
        budgets: Vec::new(),
        config: serde_json::Value::Null,
    })
}

/// A tenant's directory as the engine asks it while it resolves approvers: read from the
/// store, each question asked once per evaluation (a chain's steps often ask the same).
pub struct TenantDirectory<'a> {
    store: &'a Store,
    tenant_id: String,
    roles: RefCell<HashMap<(String, String), usize>>,
    users: RefCell<HashMap<String, bool>>,
    /// Cost center code → its manager, `None` for no such cost center.
    managers: RefCell<HashMap<String, Option<String>>>,
}

impl<'a> TenantDirectory<'a> {
    /// The directory of this tenant.
    pub fn new(store: &'a Store, tenant_id: &str) -> TenantDirectory<'a> {
        TenantDirectory {
            store,
            tenant_id: tenant_id.to_string(),
            roles: RefCell::default(),
            users: RefCell::default(),
            managers: RefCell::default(),
        }
    }

    /// Takes the order's cost center and manager from its context, which was read from the
    /// store moments before, instead of reading them again for every stage that names them.
    pub fn knowing(self, ctx: &OrderContext) -> TenantDirectory<'a> {
        if let Some(cc) = &ctx.cost_center {
            self.managers.borrow_mut().insert(cc.code.clone(), Some(cc.manager.clone()));
        }
        self
    }
}

impl Directory for TenantDirectory<'_> {
    fn cost_center_manager(&self, code: &str) -> Option<String> {
        if let Some(known) = self.managers.borrow().get(code) {
            return known.clone();
        }
        let (tenant, c) = (self.tenant_id.clone(), code.to_string());
        // A failed read counts as no such cost center: the stage is refused and the order held.
        let manager = self
            .store
            .read_blocking(move |conn| directory::cost_center(conn, &tenant, &c))
            .ok()
            .flatten()
            .map(|cc| cc.manager);
        self.managers.borrow_mut().insert(code.to_string(), manager.clone());
        manager
    }

    fn user_exists(&self, name: &str) -> bool {
        if let Some(known) = self.users.borrow().get(name) {
            return *known;
        }
        let (tenant, n) = (self.tenant_id.clone(), name.to_string());
        // A failed read counts as absent: the stage is refused and the order held (fail closed).
        let exists = self.store.read_blocking(move |c| directory::user(c, &tenant, &n)).ok().flatten().is_some();
        self.users.borrow_mut().insert(name.to_string(), exists);
        exists
    }

    fn role_holders(&self, role: &str, except: &str) -> usize {
        let key = (role.to_string(), except.to_string());
        if let Some(n) = self.roles.borrow().get(&key) {
            return *n;
        }
        let (tenant, r, e) = (self.tenant_id.clone(), key.0.clone(), key.1.clone());
        // No quorum asks for more than this many people, so counting stops there.
        let at_most = MAX_QUORUM as usize;
        let n = self.store.read_blocking(move |c| directory::role_holders(c, &tenant, &r, &e, at_most)).unwrap_or(0);
        self.roles.borrow_mut().insert(key, n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::directory::CostCenter;
    use crate::domain::fixtures;
    use crate::store::StoreOptions;

    #[test]
    fn the_orders_cost_center_comes_from_its_context_and_another_is_read_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path().join("d.db"), StoreOptions::default()).expect("store");
        let tenant = store.write_blocking(|c| directory::create_tenant(c, "acme").map(|t| t.id)).expect("tenant");
        let t = tenant.clone();
        store
            .write_blocking(move |c| {
                let cc = CostCenter { code: "CC-2".into(), manager: "dave".into(), budget_minor: None };
                directory::insert_cost_center(c, &t, &cc)
            })
            .expect("cost center");
        let mut ctx = fixtures::context(&fixtures::input(vec![fixtures::line(1, 100)]));
        ctx.cost_center = Some(CostCenterProfile {
            code: "CC-1".into(),
            manager: "carol".into(),
            budget_minor: None,
            budget_used_minor: 0,
        });
        let known = TenantDirectory::new(&store, &tenant).knowing(&ctx);
        // CC-1 is not in the store: the answer can only have come from the context.
        assert_eq!(known.cost_center_manager("CC-1").as_deref(), Some("carol"));
        assert_eq!(TenantDirectory::new(&store, &tenant).cost_center_manager("CC-1"), None);
        // Another cost center is read from the store, once: a change after the first read is not seen
        // within the same evaluation.
        assert_eq!(known.cost_center_manager("CC-2").as_deref(), Some("dave"));
        let t = tenant.clone();
        store
            .write_blocking(move |c| {
                Ok::<_, StoreError>(c.execute("DELETE FROM cost_centers WHERE tenant_id = ?1", [&t])?)
            })
            .expect("delete");
        assert_eq!(known.cost_center_manager("CC-2").as_deref(), Some("dave"));
        assert_eq!(known.cost_center_manager("CC-9"), None);
    }
}
