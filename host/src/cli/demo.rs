//! `greenlight demo`: a tenant named `demo` with one user per role, a cost center and the shipped
//! scripts enabled, so the README walk-through works as printed.

use anyhow::{Context, Result, anyhow};
use greenlight_host::approvals::{Approvals, ExtensionUpdate, NewCostCenter, NewUser};
use greenlight_host::domain::directory::BudgetPeriod;
use greenlight_host::runtime::Runtimes;
use greenlight_host::store::Store;
use std::fmt::Write as _;
use std::path::Path;

struct DemoUser {
    var: &'static str,
    name: &'static str,
    roles: &'static [&'static str],
    spend_limit_minor: Option<i64>,
    budget_minor: Option<i64>,
}

const USERS: &[DemoUser] = &[
    DemoUser {
        var: "ALICE",
        name: "alice",
        roles: &["requester"],
        spend_limit_minor: Some(50_000),
        budget_minor: Some(200_000),
    },
    DemoUser {
        var: "BOB",
        name: "bob",
        roles: &["cost_center_manager", "requester"],
        spend_limit_minor: None,
        budget_minor: None,
    },
    DemoUser { var: "CAROL", name: "carol", roles: &["approver"], spend_limit_minor: None, budget_minor: None },
    DemoUser { var: "DAVE", name: "dave", roles: &["compliance"], spend_limit_minor: None, budget_minor: None },
    DemoUser { var: "ERIN", name: "erin", roles: &["finance"], spend_limit_minor: None, budget_minor: None },
    DemoUser { var: "FRANK", name: "frank", roles: &["executive"], spend_limit_minor: None, budget_minor: None },
    DemoUser { var: "FIONA", name: "fiona", roles: &["executive"], spend_limit_minor: None, budget_minor: None },
    DemoUser { var: "GRACE", name: "grace", roles: &["auditor"], spend_limit_minor: None, budget_minor: None },
    DemoUser { var: "IVAN", name: "ivan", roles: &["it-security"], spend_limit_minor: None, budget_minor: None },
];

/// Every demo user's password for the dashboard (the README's walk-through signs in with it).
pub const DEMO_PASSWORD: &str = "greenlight-demo";

/// Creates the demo data (if the tenant does not exist yet) and prints the tokens.
pub fn setup(
    store: &Store,
    runtimes: &Runtimes,
    scripts: &Path,
    plugins: Option<&Path>,
    tokens_file: Option<&Path>,
    listen: &str,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let approvals = Approvals::new(store.clone(), runtimes.clone());
    if rt.block_on(approvals.tenant_named("demo")).is_ok() {
        eprintln!("the demo tenant already exists in this database; its tokens were printed when it was created");
        return Ok(());
    }
    if let Some(dir) = plugins {
        install_plugins(store, runtimes, dir)?;
    }
    rt.block_on(async {
        let (_, admin_token) = approvals.create_tenant("demo").await.map_err(|e| anyhow!("{e}"))?;
        let admin = approvals.authenticate(&admin_token).await.map_err(|e| anyhow!("{e}"))?.context("admin token")?;
        let mut env = format!("export GL=http://{listen}\nexport ADMIN={admin_token}\n");
        for u in USERS {
            let body = NewUser {
                name: u.name.into(),
                roles: u.roles.iter().map(|r| r.parse()).collect::<Result<_, _>>().map_err(|e| anyhow!("{e}"))?,
                email: Some(format!("{}@demo.example", u.name)),
                phone: None,
                spend_limit_minor: u.spend_limit_minor,
                budget_minor: u.budget_minor,
                budget_period: u.budget_minor.map(|_| BudgetPeriod::Month),
            };
            let (_, token) = approvals.create_user(&admin, body).await.map_err(|e| anyhow!("{e}"))?;
            approvals.set_password(&admin, u.name, DEMO_PASSWORD).await.map_err(|e| anyhow!("{e}"))?;
            let _ = writeln!(env, "export {}={token}", u.var);
        }
        approvals.set_password(&admin, "admin", DEMO_PASSWORD).await.map_err(|e| anyhow!("{e}"))?;
        approvals
            .create_cost_center(
                &admin,
                NewCostCenter { code: "CC-100".into(), manager: "bob".into(), budget_minor: Some(10_000_000) },
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let mut files: Vec<_> = std::fs::read_dir(scripts)
            .with_context(|| format!("reading scripts from {}", scripts.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
            .collect();
        files.sort();
        let installed: Vec<String> =
            approvals.installed_plugins().await.map_err(|e| anyhow!("{e}"))?.into_iter().map(|p| p.name).collect();
        for (i, path) in files.iter().enumerate() {
            let name = path.file_stem().and_then(|s| s.to_str()).context("script name")?.to_string();
            let config_path = path.with_extension("config.json");
            let config = if config_path.exists() {
                Some(serde_json::from_str(&std::fs::read_to_string(&config_path)?)?)
            } else {
                None
            };
            let position = Some(10 * (i as i64 + 1));
            // Where the same rule ships as a WASM plugin, the demo runs the plugin.
            let kind = if installed.contains(&name) {
                "plugin"
            } else {
                let source = std::fs::read_to_string(path)?;
                approvals.add_script(&admin, &name, &source).await.map_err(|e| anyhow!("{}: {e}", path.display()))?;
                "script"
            };
            approvals
                .update_extension(
                    &admin,
                    &name,
                    ExtensionUpdate {
                        enabled: true,
                        position,
                        config,
                        grants: None,
                        // Vendor eligibility is the demo's compliance rule in reports (R10).
                        compliance: Some(name == "vendor-eligibility"),
                        upgrade: false,
                    },
                )
                .await
                .map_err(|e| anyhow!("{e}"))?;
            eprintln!("enabled {kind} {name}");
        }
        if plugins.is_some() {
            // The template plugin, configured for the demo: large orders need finance's review.
            let config = serde_json::json!({"threshold_minor": 5_000_000, "level": 20, "role": "finance"});
            let body = ExtensionUpdate {
                enabled: true,
                position: Some(90),
                config: Some(config),
                grants: None,
                compliance: None,
                upgrade: false,
            };
            approvals.update_extension(&admin, "large-order", body).await.map_err(|e| anyhow!("{e}"))?;
            eprintln!("enabled plugin large-order (orders from 50000.00 need finance)");
            // Subscriptions (R3) and the budget-overrun clearance of compliance (R5); vendor
            // eligibility stays with the vendor-eligibility script.
            for (name, position) in [("compliance", 5), ("subscription", 35)] {
                let compliance = Some(name == "compliance");
                let body =
                    ExtensionUpdate { enabled: true, position: Some(position), config: None, grants: None, compliance, upgrade: false };
                approvals.update_extension(&admin, name, body).await.map_err(|e| anyhow!("{e}"))?;
                eprintln!("enabled plugin {name}");
            }
        }
        print!("{env}");
        eprintln!(
            "dashboard: open http://{listen}/ and sign in to organization 'demo' as alice, bob, carol, dave, erin, frank, fiona, grace, ivan or admin, password '{DEMO_PASSWORD}'"
        );
        eprintln!(
            "admin first sets up two-step verification: scan the QR code with an authenticator app, or run `oathtool --totp -b SECRET` with the secret the page shows"
        );
        if let Some(f) = tokens_file {
            std::fs::write(f, &env).with_context(|| format!("writing {}", f.display()))?;
            eprintln!("tokens written to {}", f.display());
        }
        Ok(())
    })
}

/// Installs every shipped plugin of a `target/plugins` folder; test fixtures are skipped, and
/// native ones unless the operator allowed native plugins.
fn install_plugins(store: &Store, runtimes: &Runtimes, dir: &Path) -> Result<()> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading plugins from {} (run `cargo xtask plugins`)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    found.sort();
    for path in found {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.starts_with("tp-") || name == "wrong-abi" || !path.join("manifest.toml").exists() {
            continue;
        }
        match runtimes.install(store, &path.join("manifest.toml")) {
            Ok(p) => eprintln!("installed plugin {} {} ({})", p.name, p.version, p.world),
            Err(greenlight_host::runtime::RuntimeError::Native(e)) => eprintln!("skipped plugin {name}: {e}"),
            Err(e) => return Err(anyhow!("installing {name}: {e}")),
        }
    }
    Ok(())
}
