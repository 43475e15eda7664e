//! Extension runtimes behind the engine's one [`crate::engine::Step`] trait, and the catalog
//! that turns a tenant's enabled extensions into the step chain the engine runs.
//!
//! - [`rhai`]: Rhai scripts, compiled once per content hash, run under operation, depth and
//!   size limits, with `eval` and modules disabled.

pub mod rhai;

use crate::engine::{ConfiguredStep, Step, StepError, StepKind};
use crate::store::{Store, StoreError, extensions};
use std::sync::Arc;

/// What can go wrong assembling a tenant's steps.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The host's extension runtimes. One per process; cheap to clone.
#[derive(Clone)]
pub struct Runtimes {
    /// The Rhai runtime.
    pub rhai: Arc<rhai::RhaiRuntime>,
}

/// A step that could not be loaded: it fails every call so the order goes on hold with the
/// reason, instead of silently running without the rule.
struct Unloadable {
    name: String,
    hash: String,
    why: String,
}

impl Step for Unloadable {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> StepKind {
        StepKind::Script
    }
    fn code_hash(&self) -> &str {
        &self.hash
    }
    fn evaluate(&self, _: &crate::domain::step::OrderContext) -> Result<crate::domain::step::StepOutput, StepError> {
        Err(StepError::Failed(format!("could not be loaded: {}", self.why)))
    }
}

impl Runtimes {
    /// Runtimes with default limits.
    pub fn new() -> Runtimes {
        Runtimes { rhai: Arc::new(rhai::RhaiRuntime::new(rhai::RhaiLimits::default())) }
    }

    /// The tenant's enabled steps, in run order, with their configuration. Must be called on a
    /// blocking thread (it reads the store).
    pub fn steps_for(&self, store: &Store, tenant_id: &str) -> Result<Vec<ConfiguredStep>, RuntimeError> {
        let tenant_id = tenant_id.to_string();
        let scripts = store.read_blocking(move |c| extensions::enabled_scripts(c, &tenant_id))?;
        Ok(scripts
            .into_iter()
            .map(|(script, config)| {
                let step: Arc<dyn Step> = match self.rhai.step(&script.name, &script.source) {
                    Ok(s) => Arc::new(s),
                    Err(e) => Arc::new(Unloadable { name: script.name, hash: script.hash, why: e.to_string() }),
                };
                ConfiguredStep { step, config }
            })
            .collect())
    }
}

impl Default for Runtimes {
    fn default() -> Self {
        Runtimes::new()
    }
}
