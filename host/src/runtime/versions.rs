//! Steps of exact versions, current or not: what replay runs (the version an evaluation
//! recorded) and what a what-if simulation runs (a candidate's version or source); and a
//! tenant's chain in fresh instances, for checks of recorded evaluations.

use super::manifest::{Manifest, ManifestError};
use super::{RuntimeError, Runtimes, rhai, wasm};
use crate::engine::{ConfiguredStep, Step, StepKind};
use crate::store::Store;
use crate::store::extensions;
use crate::store::plugins::{self, PluginRecord};
use std::sync::Arc;

/// One exact version of a step with the configuration to run it with.
#[derive(Debug, Clone, Copy)]
pub struct StepVersion<'a> {
    /// Extension name.
    pub name: &'a str,
    /// Script, WASM or native.
    pub kind: StepKind,
    /// Content hash of the stored version (ignored with `source`).
    pub code_hash: &'a str,
    /// A script's source that is not stored (a candidate).
    pub source: Option<&'a str>,
    /// The tenant's configuration.
    pub config: &'a serde_json::Value,
}

impl Runtimes {
    /// These runtimes with every step in a fresh instance whatever the operator allows, for
    /// checks against recorded evaluations (the drift check): in a reused instance they would
    /// both see and change what the tenant's next order finds there.
    pub fn fresh(&self) -> Runtimes {
        let mut options = (*self.options).clone();
        options.wasm.reuse_step_instances = false;
        Runtimes { options: Arc::new(options), ..self.clone() }
    }

    /// One exact version of a step, by kind and content hash, as an evaluation recorded it: a
    /// script version of the tenant, or a stored plugin version (current or not). Replay runs it
    /// with the recorded configuration (a plugin's merged over its manifest's defaults, as when
    /// it ran).
    pub fn step_version(
        &self,
        store: &Store,
        tenant_id: &str,
        name: &str,
        kind: StepKind,
        code_hash: &str,
    ) -> Result<Arc<dyn Step>, RuntimeError> {
        self.load_version(store, tenant_id, name, kind, code_hash).map(|(step, _)| step)
    }

    /// [`Runtimes::step_version`], with a plugin's stored manifest (read once, for the step and
    /// for its configuration's defaults).
    fn load_version(
        &self,
        store: &Store,
        tenant_id: &str,
        name: &str,
        kind: StepKind,
        code_hash: &str,
    ) -> Result<(Arc<dyn Step>, Option<serde_json::Value>), RuntimeError> {
        let (t, n, h) = (tenant_id.to_string(), name.to_string(), code_hash.to_string());
        match kind {
            StepKind::Script => {
                let (stored_name, source) = store
                    .read_blocking(move |c| extensions::script_version(c, &t, &h))?
                    .ok_or_else(|| RuntimeError::Io(format!("no version {code_hash} of script '{name}' is stored")))?;
                let step =
                    self.rhai.version(&stored_name, code_hash, &source).map_err(|e| RuntimeError::Io(e.to_string()))?;
                Ok((Arc::new(step), None))
            }
            StepKind::Wasm | StepKind::Native => {
                let version = store
                    .read_blocking(move |c| plugins::version(c, &n, &h))?
                    .ok_or_else(|| RuntimeError::Io(format!("no version {code_hash} of plugin '{name}' is stored")))?;
                let record = PluginRecord {
                    name: name.to_string(),
                    code_hash: code_hash.to_string(),
                    manifest: version.manifest,
                    installed_at: String::new(),
                };
                let step: Arc<dyn Step> = if kind == StepKind::Native {
                    self.native_step(store, &record)?.0
                } else {
                    let plugin = self.wasm_plugin(store, &record)?;
                    // Never an idle instance: a replay shows what a fresh one returns.
                    let tenant = tenant_id.to_string();
                    Arc::new(wasm::WasmStep { runtime: self.wasm.clone(), plugin, tenant, reuse: false })
                };
                Ok((step, Some(record.manifest)))
            }
            StepKind::Connector => Err(RuntimeError::Io("a connector failure is not a step to replay".into())),
        }
    }

    /// A step of one exact version with a tenant configuration, as a chain would run it: a
    /// plugin's configuration merged over its manifest's defaults. `source` compiles a script
    /// that is not stored (a candidate in a what-if simulation).
    pub fn configured_version(
        &self,
        store: &Store,
        tenant_id: &str,
        v: &StepVersion<'_>,
    ) -> Result<ConfiguredStep, RuntimeError> {
        let StepVersion { name, kind, code_hash, source, config } = *v;
        if let Some(source) = source {
            let step = self
                .rhai
                .version(name, &rhai::source_hash(source), source)
                .map_err(|e| RuntimeError::Io(e.to_string()))?;
            return Ok(ConfiguredStep { step: Arc::new(step), config: config.clone() });
        }
        let (step, manifest) = self.load_version(store, tenant_id, name, kind, code_hash)?;
        let config = match manifest {
            None => config.clone(),
            Some(manifest) => {
                let manifest: Manifest = serde_json::from_value(manifest).map_err(|e| ManifestError::Parse {
                    path: format!("stored manifest of {name}"),
                    reason: e.to_string(),
                })?;
                manifest.effective_config(config)?
            }
        };
        Ok(ConfiguredStep { step, config })
    }
}
