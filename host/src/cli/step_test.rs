//! `greenlight step test`: the integrator's local loop. Runs one script on an order file through
//! the same engine checks the host applies, and prints the step's output as JSON.

use anyhow::{Context, Result};
use greenlight_host::domain::order::OrderInput;
use greenlight_host::domain::step::{ContextOrder, CostCenterProfile, OrderContext, RequesterProfile};
use greenlight_host::engine::{self, ConfiguredStep, Directory};
use greenlight_host::runtime::Runtimes;
use greenlight_host::runtime::manifest::{Manifest, World};
use greenlight_host::runtime::rhai::{RhaiLimits, RhaiRuntime};
use greenlight_host::runtime::wasm::{CallContext, CallStats, LoadedPlugin, WasmRuntime};
use serde::Deserialize;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;

/// The order file: the order as a requester writes it, plus the facts the host would look up.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderFile {
    /// Order id (default `example`).
    #[serde(default)]
    id: Option<String>,
    /// The order, exactly as `POST /v1/orders` takes it.
    order: OrderInput,
    /// The requester (default: `requester` with role requester, no limits).
    #[serde(default)]
    requester: Option<RequesterProfile>,
    /// The cost center, when the order names one.
    #[serde(default)]
    cost_center: Option<CostCenterProfile>,
    /// The customer as the tenant's ERP connector would report it.
    #[serde(default)]
    customer: Option<greenlight_host::domain::step::Customer>,
}

/// The directory an order file describes. It lists no users, so every user and role a step
/// names is taken to exist; the host checks them against the tenant when the order is submitted.
struct FileDirectory(Option<CostCenterProfile>);

impl Directory for FileDirectory {
    fn cost_center_manager(&self, code: &str) -> Option<String> {
        self.0.as_ref().filter(|c| c.code == code).map(|c| c.manager.clone())
    }

    fn user_exists(&self, _: &str) -> bool {
        true
    }

    fn role_holders(&self, _: &str, _: &str) -> usize {
        usize::MAX
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// Reads the order file and the config into the context a step sees.
fn load_context(
    order: &Path,
    config: Option<&Path>,
) -> Result<(OrderContext, Option<CostCenterProfile>, serde_json::Value)> {
    let file: OrderFile = read_json(order)?;
    let config: serde_json::Value = match config {
        Some(p) => read_json(p)?,
        None => serde_json::json!({}),
    };
    let subtotal = file.order.validate().map_err(|e| anyhow::anyhow!("{}: {e}", order.display()))?;
    let id = file.id.unwrap_or_else(|| "example".into());
    let requester = file.requester.unwrap_or(RequesterProfile {
        name: "requester".into(),
        roles: vec!["requester".into()],
        spend_limit_minor: None,
        budget_minor: None,
        budget_period: None,
        budget_used_minor: 0,
    });
    let ctx = OrderContext {
        order: ContextOrder::new(&id, &requester.name, &file.order),
        subtotal_minor: subtotal,
        requester,
        cost_center: file.cost_center.clone(),
        customer: file.customer.clone(),
        budgets: Vec::new(),
        config: serde_json::Value::Null,
    };
    Ok((ctx, file.cost_center, config))
}

/// Runs the steps through the engine's checks and prints the one step's output.
fn report(
    name: &str,
    ctx: &OrderContext,
    steps: &[ConfiguredStep],
    cost_center: Option<CostCenterProfile>,
) -> Result<ExitCode> {
    let eval = engine::evaluate(ctx, steps, &FileDirectory(cost_center));
    let run = eval.runs.into_iter().next().context("the step did not run")?;
    match (run.output, run.error) {
        (Some(out), None) => {
            let text = serde_json::to_string_pretty(&out)?;
            // A closed pipe (`| head`) is not an error of the step.
            let _ = writeln!(std::io::stdout().lock(), "{text}");
            Ok(ExitCode::SUCCESS)
        }
        (_, err) => {
            eprintln!("step '{name}' {}", err.unwrap_or_default());
            Ok(ExitCode::from(1))
        }
    }
}

/// `step test --script`.
pub fn run(script: &Path, order: &Path, config: Option<&Path>) -> Result<ExitCode> {
    let source = std::fs::read_to_string(script).with_context(|| format!("reading {}", script.display()))?;
    let (ctx, cost_center, config) = load_context(order, config)?;
    let name = script.file_stem().and_then(|s| s.to_str()).unwrap_or("script").to_string();
    let runtime = RhaiRuntime::new(RhaiLimits::default());
    let step = runtime.step("local", &name, &source).map_err(|e| anyhow::anyhow!("{}: {e}", script.display()))?;
    report(&name, &ctx, &[ConfiguredStep { step: Arc::new(step), config }], cost_center)
}

/// A WASM step that remembers what its call used.
struct Measured {
    runtime: Arc<WasmRuntime>,
    plugin: Arc<LoadedPlugin>,
    stats: Mutex<CallStats>,
}

impl greenlight_host::engine::Step for Measured {
    fn name(&self) -> &str {
        &self.plugin.name
    }
    fn kind(&self) -> greenlight_host::engine::StepKind {
        greenlight_host::engine::StepKind::Wasm
    }
    fn code_hash(&self) -> &str {
        &self.plugin.code_hash
    }
    fn evaluate(
        &self,
        ctx: &OrderContext,
    ) -> Result<greenlight_host::domain::step::StepOutput, greenlight_host::engine::StepError> {
        let call = CallContext {
            tenant: "step-test".into(),
            order: Some(ctx.order.id.clone()),
            plugin: self.plugin.name.clone(),
            config_json: ctx.config.to_string(),
            ..CallContext::default()
        };
        let (result, stats) = self.runtime.evaluate(&self.plugin, ctx, call);
        if let Ok(mut s) = self.stats.lock() {
            *s = stats;
        }
        result
    }
}

/// `step test --plugin`: runs a WASM approval step under the host's limits and reports time,
/// fuel and peak memory on stderr.
pub fn run_plugin(runtimes: &Runtimes, manifest_path: &Path, order: &Path, config: Option<&Path>) -> Result<ExitCode> {
    let manifest = Manifest::load(manifest_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    if manifest.kind != greenlight_host::runtime::manifest::Kind::Wasm {
        anyhow::bail!(
            "{} is a native plugin; step test --plugin runs WASM components (test native steps through the host)",
            manifest.name
        );
    }
    if manifest.world != World::ApprovalStep {
        anyhow::bail!("{} is a {} plugin; step test runs approval steps", manifest.name, manifest.world.as_str());
    }
    let code = manifest.code_path(manifest_path);
    let bytes = std::fs::read(&code).with_context(|| format!("reading {}", code.display()))?;
    let (ctx, cost_center, config) = load_context(order, config)?;
    let config = manifest.effective_config(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plugin = runtimes.wasm.load_bytes(&bytes, &manifest).map_err(|e| anyhow::anyhow!("{e}"))?;
    let step = Arc::new(Measured { runtime: runtimes.wasm.clone(), plugin, stats: Mutex::new(CallStats::default()) });
    let code = report(&manifest.name, &ctx, &[ConfiguredStep { step: step.clone(), config }], cost_center)?;
    let stats = step.stats.lock().map(|s| *s).unwrap_or_default();
    eprintln!("time {} µs, fuel {}, peak memory {} KiB", stats.micros, stats.fuel, stats.peak_memory_bytes / 1024);
    Ok(code)
}
