//! `greenlight step test`: the integrator's local loop. Runs one script on an order file through
//! the same engine checks the host applies, and prints the step's output as JSON.

use anyhow::{Context, Result};
use greenlight_host::domain::order::OrderInput;
use greenlight_host::domain::step::{ContextOrder, CostCenterProfile, OrderContext, RequesterProfile};
use greenlight_host::engine::{self, ConfiguredStep, Directory};
use greenlight_host::runtime::rhai::{RhaiLimits, RhaiRuntime};
use serde::Deserialize;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

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
}

struct FileDirectory(Option<CostCenterProfile>);

impl Directory for FileDirectory {
    fn cost_center_manager(&self, code: &str) -> Option<String> {
        self.0.as_ref().filter(|c| c.code == code).map(|c| c.manager.clone())
    }
}

fn has_float(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(has_float),
        serde_json::Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

pub fn run(script: &Path, order: &Path, config: Option<&Path>) -> Result<ExitCode> {
    let source = std::fs::read_to_string(script).with_context(|| format!("reading {}", script.display()))?;
    let file: OrderFile = read_json(order)?;
    let config: serde_json::Value = match config {
        Some(p) => read_json(p)?,
        None => serde_json::json!({}),
    };
    let subtotal = file.order.validate().map_err(|e| anyhow::anyhow!("{}: {e}", order.display()))?;
    if has_float(&serde_json::Value::Object(file.order.attributes.clone())) {
        anyhow::bail!("{}: attributes: numbers must be integers (amounts in minor units)", order.display());
    }
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
        config: serde_json::Value::Null,
    };
    let name = script.file_stem().and_then(|s| s.to_str()).unwrap_or("script").to_string();
    let runtime = RhaiRuntime::new(RhaiLimits::default());
    let step = runtime.step(&name, &source).map_err(|e| anyhow::anyhow!("{}: {e}", script.display()))?;
    let steps = [ConfiguredStep { step: Arc::new(step), config }];
    let eval = engine::evaluate(&ctx, &steps, &FileDirectory(file.cost_center));
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
