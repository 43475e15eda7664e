//! What the runtime tests share: the built plugins, a store with a tenant, runtimes with
//! options, enabling an extension, an order context, and running a tenant's one step.
//!
//! Not every test binary uses every helper, hence `dead_code`.

#![allow(dead_code)]

use greenlight_host::domain::order::{Line, OrderInput};
use greenlight_host::domain::step::{ContextOrder, OrderContext, RequesterProfile};
use greenlight_host::engine::StepError;
use greenlight_host::runtime::{RuntimeOptions, Runtimes};
use greenlight_host::store::extensions::{self, Grants};
use greenlight_host::store::{Store, StoreOptions, directory};
use std::path::{Path, PathBuf};

pub fn plugins() -> PathBuf {
    let dir = std::env::var_os("GREENLIGHT_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    assert!(
        dir.join("large-order/manifest.toml").exists(),
        "{} has no built plugins: run `cargo xtask plugins` first",
        dir.display()
    );
    dir
}

pub fn manifest(name: &str) -> PathBuf {
    plugins().join(name).join("manifest.toml")
}

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub store: Store,
    pub tenant: String,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path().join("p.db"), StoreOptions::default()).expect("store");
    let tenant = store.write_blocking(|c| directory::create_tenant(c, "acme").map(|t| t.id)).expect("tenant");
    Fixture { _dir: dir, store, tenant }
}

pub fn runtimes(f: impl FnOnce(&mut RuntimeOptions)) -> Runtimes {
    let mut o = RuntimeOptions::default();
    f(&mut o);
    Runtimes::with_options(o).expect("runtimes")
}

pub fn enable(fx: &Fixture, name: &str, config: serde_json::Value, grants: Option<Grants>) {
    let (t, n) = (fx.tenant.clone(), name.to_string());
    fx.store
        .write_blocking(move |c| {
            let u = extensions::ExtensionUpdate {
                enabled: true,
                position: Some(10),
                config: Some(config),
                grants,
                compliance: None,
                upgrade: false,
            };
            extensions::update_setting(c, &t, &n, &u)
        })
        .expect("enable");
}

pub fn ctx() -> OrderContext {
    let input = OrderInput {
        cost_center: None,
        department: Some("R&D".into()),
        customer_id: None,
        vendor_id: None,
        currency: "EUR".parse().expect("EUR"),
        lines: vec![Line {
            sku: "A".into(),
            description: None,
            quantity: 3,
            unit_price_minor: 500_000,
            tax_category: None,
            budget_category: None,
        }],
        recurrence: None,
        attributes: Default::default(),
    };
    OrderContext {
        order: ContextOrder::new("o-1", "alice", &input),
        subtotal_minor: 1_500_000,
        requester: RequesterProfile {
            name: "alice".into(),
            roles: vec![],
            spend_limit_minor: None,
            budget_minor: None,
            budget_period: None,
            budget_used_minor: 0,
        },
        cost_center: None,
        customer: None,
        budgets: Vec::new(),
        config: serde_json::json!({}),
    }
}

pub fn run_one(rt: &Runtimes, fx: &Fixture) -> Result<greenlight_host::domain::step::StepOutput, StepError> {
    let steps = rt.steps_for(&fx.store, &fx.tenant).expect("steps");
    assert_eq!(steps.len(), 1);
    let s = &steps[0];
    let mut c = ctx();
    c.config = s.config.clone();
    s.step.evaluate(&c)
}
