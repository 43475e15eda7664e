//! Extension runtimes behind the engine's one [`crate::engine::Step`] trait, and the catalog
//! that turns a tenant's enabled extensions into the step chain the engine runs.
//!
//! - [`rhai`]: Rhai scripts, compiled once per content hash, run under operation, depth and
//!   size limits, with `eval` and modules disabled.
//! - [`wasm`]: sandboxed WebAssembly components implementing the plugin API (`plugin-api/wit`).
//! - [`native`]: trusted native libraries behind a versioned C ABI, off by default.
//! - [`manifest`]: the manifest every plugin ships.
//! - [`relay`]: the operator's mail relay, for plugins granted `mail` and the host's own notices.
//!
//! Plugins are host-wide: `greenlight plugin install` validates, precompiles and stores them by
//! content hash; tenants enable and configure them. A running host notices a new version on the
//! next evaluation and swaps to it atomically: calls in flight finish on the old one.

pub mod manifest;
pub mod native;
pub mod relay;
pub mod rhai;
mod versions;
pub mod wasm;

pub use versions::StepVersion;

use crate::domain::credit::{CreditLine, CreditUpdate};
use crate::domain::delivery::{Attempt, Notification};
use crate::domain::step::{MAX_BUDGETS, OrderContext};
use crate::engine::{ConfiguredStep, Step, StepError, StepKind};
use crate::store::extensions::{self, Code};
use crate::store::plugins::{self, PluginRecord};
use crate::store::{Store, StoreError};
use manifest::{Kind, Manifest, ManifestError, World};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasm::{ConnectorError, LoadedPlugin, WasmError, WasmLimits, WasmRuntime};

/// What can go wrong with extensions.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manifest is wrong.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The component is wrong, or the engine failed.
    #[error(transparent)]
    Wasm(#[from] WasmError),
    /// The native library is wrong or not allowed.
    #[error(transparent)]
    Native(#[from] native::NativeError),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// Operator settings of the runtimes.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Limits of every WASM call.
    pub wasm: WasmLimits,
    /// Whether native plugins may be installed and run.
    pub allow_native: bool,
    /// Whether plugins may call loopback and private addresses (tests, on-premise systems).
    pub allow_private_network: bool,
    /// Headers the host adds to requests to an origin: operator secrets plugins never see.
    pub http_secrets: Vec<(String, Vec<(String, String)>)>,
    /// Time limit of one outbound request.
    pub http_timeout: Duration,
    /// Largest outbound response body.
    pub http_max_response_bytes: u64,
    /// The operator's mail relay behind the `mail` capability; without one, mail is denied.
    pub mail_relay: Option<Arc<dyn relay::MailRelay>>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            wasm: WasmLimits::default(),
            allow_native: false,
            allow_private_network: false,
            http_secrets: Vec::new(),
            http_timeout: Duration::from_secs(5),
            http_max_response_bytes: 1 << 20,
            mail_relay: None,
        }
    }
}

/// The host's extension runtimes. One per process; cheap to clone.
#[derive(Clone)]
pub struct Runtimes {
    /// The Rhai runtime.
    pub rhai: Arc<rhai::RhaiRuntime>,
    /// The WASM runtime.
    pub wasm: Arc<WasmRuntime>,
    options: Arc<RuntimeOptions>,
    natives: Arc<std::sync::Mutex<std::collections::HashMap<String, NativeLoaded>>>,
}

/// A loaded native step with its manifest, cached by code hash.
type NativeLoaded = (Arc<native::NativeStep>, Manifest);

/// A step that could not be loaded: it fails every call so the order goes on hold with the
/// reason, instead of silently running without the rule.
struct Unloadable {
    name: String,
    hash: String,
    kind: StepKind,
    why: String,
}

impl Step for Unloadable {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> StepKind {
        self.kind
    }
    fn code_hash(&self) -> &str {
        &self.hash
    }
    fn evaluate(&self, _: &crate::domain::step::OrderContext) -> Result<crate::domain::step::StepOutput, StepError> {
        Err(StepError::Failed(format!("could not be loaded: {}", self.why)))
    }
}

/// What `plugin install` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Installed {
    /// Extension name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its world.
    pub world: &'static str,
    /// SHA-256 of its code.
    pub code_hash: String,
    /// Whether this replaced another version.
    pub replaced: Option<String>,
}

fn io_err(what: &str, e: std::io::Error) -> RuntimeError {
    RuntimeError::Io(format!("{what}: {e}"))
}

impl Runtimes {
    /// Runtimes with default limits.
    pub fn new() -> Result<Runtimes, RuntimeError> {
        Runtimes::with_options(RuntimeOptions::default())
    }

    /// Runtimes with operator settings.
    pub fn with_options(options: RuntimeOptions) -> Result<Runtimes, RuntimeError> {
        Ok(Runtimes {
            rhai: Arc::new(rhai::RhaiRuntime::new(rhai::RhaiLimits::default())),
            wasm: WasmRuntime::new(options.wasm.clone())?,
            options: Arc::new(options),
            natives: Arc::default(),
        })
    }

    /// The operator settings.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Where plugin code and artifacts of this database live (`greenlight.db` →
    /// `greenlight.plugins/`).
    pub fn plugin_dir(store: &Store) -> PathBuf {
        store.path().with_extension("plugins")
    }

    /// Validates, precompiles and stores a plugin; makes it the current version of its name.
    pub fn install(&self, store: &Store, manifest_path: &Path) -> Result<Installed, RuntimeError> {
        self.store_version(store, manifest_path, true)
    }

    /// Validates, precompiles and stores a plugin version without making it current: the
    /// catalog's offer of a newer version, which the operator takes up with `plugin upgrade`.
    pub fn offer(&self, store: &Store, manifest_path: &Path) -> Result<Installed, RuntimeError> {
        self.store_version(store, manifest_path, false)
    }

    fn store_version(&self, store: &Store, manifest_path: &Path, current: bool) -> Result<Installed, RuntimeError> {
        let manifest = Manifest::load(manifest_path)?;
        let n = manifest.name.clone();
        if store.read_blocking(move |c| extensions::script_name_in_use(c, &n))? {
            return Err(ManifestError::Invalid {
                field: "name".into(),
                reason: format!(
                    "a tenant has a script named '{}'; extension names are unique, so rename the plugin or the script",
                    manifest.name
                ),
            }
            .into());
        }
        let code_path = manifest.code_path(manifest_path);
        let bytes = std::fs::read(&code_path).map_err(|e| io_err(&format!("reading {}", code_path.display()), e))?;
        let hash = wasm::code_hash(&bytes);
        let dir = Self::plugin_dir(store);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&format!("creating {}", dir.display()), e))?;
        match manifest.kind {
            Kind::Wasm => {
                let artifact = self.wasm.validate(&bytes, &manifest)?;
                wasm::write_atomically(&wasm::original_path(&dir, &hash), &bytes)?;
                wasm::write_atomically(&wasm::artifact_path(&dir, &hash, self.wasm.engine_hash()), &artifact)?;
                let (h, e, sha) = (hash.clone(), self.wasm.engine_hash().to_string(), wasm::code_hash(&artifact));
                store.write_blocking(move |c| plugins::record_artifact(c, &h, &e, &sha, &now()))?;
            }
            Kind::Native => {
                if !self.options.allow_native {
                    return Err(native::NativeError::Disabled.into());
                }
                if manifest.world != World::ApprovalStep {
                    return Err(ManifestError::Invalid {
                        field: "world".into(),
                        reason: "native plugins may only be approval steps".into(),
                    }
                    .into());
                }
                let target = dir.join(format!("{hash}.{}", std::env::consts::DLL_EXTENSION));
                wasm::write_atomically(&target, &bytes)?;
                if let Err(e) = native::load(&target, &manifest.name, &hash) {
                    // A refused library does not stay in the plugin folder.
                    let _ = std::fs::remove_file(&target);
                    return Err(e.into());
                }
            }
        }
        let json = serde_json::to_value(&manifest).map_err(|e| RuntimeError::Io(e.to_string()))?;
        let kind = match manifest.kind {
            Kind::Wasm => "wasm",
            Kind::Native => "native",
        };
        let (name, version, world, h2) =
            (manifest.name.clone(), manifest.version.clone(), manifest.world.as_str(), hash.clone());
        let previous = store.write_blocking(move |c| -> Result<Option<String>, StoreError> {
            let prev = plugins::get(c, &name)?.map(|p| p.code_hash);
            let at = now();
            let v = plugins::NewVersion {
                name: &name,
                version: &version,
                world,
                kind,
                code_hash: &h2,
                manifest: &json,
                at: &at,
            };
            if current {
                plugins::install(c, &v)?;
            } else {
                plugins::record_version(c, &v)?;
                crate::store::catalog::offer_plugin(c, &name, &h2, &version, &at)?;
            }
            Ok(prev)
        })?;
        Ok(Installed {
            name: manifest.name,
            version: manifest.version,
            world: manifest.world.as_str(),
            code_hash: hash.clone(),
            replaced: previous.filter(|p| *p != hash),
        })
    }

    /// The loaded form of a WASM plugin version, loading (and swapping in) a new version when
    /// the catalog moved on. Calls holding the old `Arc` finish on the old version.
    pub fn wasm_plugin(&self, store: &Store, record: &PluginRecord) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        if let Some(p) = self.wasm.cached(&record.name, &record.code_hash) {
            return Ok(p);
        }
        let manifest = stored_manifest(record)?;
        let (h, e) = (record.code_hash.clone(), self.wasm.engine_hash().to_string());
        let recorded = store.read_blocking(move |c| plugins::artifact(c, &h, &e))?;
        let dir = Self::plugin_dir(store);
        let (plugin, written) =
            self.wasm.load(&dir, &record.name, &record.code_hash, &manifest, recorded.as_deref())?;
        if let Some(sha) = written {
            let (h, e) = (record.code_hash.clone(), self.wasm.engine_hash().to_string());
            store.write_blocking(move |c| plugins::record_artifact(c, &h, &e, &sha, &now()))?;
        }
        Ok(plugin)
    }

    /// A native step and its manifest, loaded once per code hash.
    fn native_step(
        &self,
        store: &Store,
        record: &PluginRecord,
    ) -> Result<(Arc<native::NativeStep>, Manifest), RuntimeError> {
        if !self.options.allow_native {
            return Err(native::NativeError::Disabled.into());
        }
        if let Some(s) = self.natives.lock().ok().and_then(|m| m.get(&record.code_hash).cloned()) {
            return Ok(s);
        }
        let manifest = stored_manifest(record)?;
        let path = Self::plugin_dir(store).join(format!("{}.{}", record.code_hash, std::env::consts::DLL_EXTENSION));
        let loaded = (Arc::new(native::load(&path, &record.name, &record.code_hash)?), manifest);
        if let Ok(mut m) = self.natives.lock() {
            m.insert(record.code_hash.clone(), loaded.clone());
        }
        Ok(loaded)
    }

    /// The tenant's enabled approval steps, in run order, with their configuration. Must be
    /// called on a blocking thread (it reads the store and may compile).
    pub fn steps_for(&self, store: &Store, tenant_id: &str) -> Result<Vec<ConfiguredStep>, RuntimeError> {
        let t = tenant_id.to_string();
        let enabled = store.read_blocking(move |c| extensions::enabled(c, &t))?;
        let mut steps = Vec::with_capacity(enabled.len());
        for e in enabled {
            let configured = match e.code {
                Code::Script(script) => {
                    let step: Arc<dyn Step> =
                        match self.rhai.step_hashed(tenant_id, &script.name, &script.hash, &script.source) {
                            Ok(s) => Arc::new(s),
                            Err(err) => Arc::new(Unloadable {
                                name: script.name,
                                hash: script.hash,
                                kind: StepKind::Script,
                                why: err.to_string(),
                            }),
                        };
                    ConfiguredStep { step, config: e.config }
                }
                Code::Plugin(record) => {
                    // An unreadable manifest fails below, as a step that holds every order.
                    let manifest = stored_manifest(&record).ok();
                    if manifest.as_ref().is_some_and(|m| m.world != World::ApprovalStep) {
                        continue; // connectors and notifiers are not steps
                    }
                    let native = manifest.is_some_and(|m| m.kind == Kind::Native);
                    let loaded: Result<(Arc<dyn Step>, serde_json::Value), RuntimeError> = if native {
                        self.native_step(store, &record).and_then(|(step, manifest)| {
                            Ok((step as Arc<dyn Step>, manifest.effective_config(&e.config)?))
                        })
                    } else {
                        self.wasm_plugin(store, &record).and_then(|plugin| {
                            let config = plugin.manifest.effective_config(&e.config)?;
                            let step = wasm::WasmStep {
                                runtime: self.wasm.clone(),
                                plugin,
                                tenant: tenant_id.to_string(),
                                reuse: self.options.wasm.reuse_step_instances,
                            };
                            Ok((Arc::new(step) as Arc<dyn Step>, config))
                        })
                    };
                    // A plugin that cannot load, or whose tenant config no longer fits its manifest,
                    // fails every call: the order goes on hold with the reason (fail closed).
                    let (step, config) = loaded.unwrap_or_else(|err| {
                        let kind = if native { StepKind::Native } else { StepKind::Wasm };
                        let why = err.to_string();
                        let step: Arc<dyn Step> = Arc::new(Unloadable {
                            name: record.name.clone(),
                            hash: record.code_hash.clone(),
                            kind,
                            why,
                        });
                        (step, e.config.clone())
                    });
                    ConfiguredStep { step, config }
                }
            };
            steps.push(configured);
        }
        Ok(steps)
    }

    /// The per-call context of a connector or notifier for a tenant: its effective config and
    /// the capabilities both its manifest declares and the tenant grants.
    pub fn call_context(
        &self,
        store: &Store,
        tenant_id: &str,
        name: &str,
    ) -> Result<Option<(Arc<LoadedPlugin>, wasm::CallContext)>, RuntimeError> {
        let (t, n) = (tenant_id.to_string(), name.to_string());
        let enabled = store.read_blocking(move |c| extensions::enabled(c, &t))?;
        let Some(e) = enabled.into_iter().find(|e| e.name == n) else { return Ok(None) };
        let Code::Plugin(record) = &e.code else { return Ok(None) };
        let plugin = self.wasm_plugin(store, record)?;
        let manifest = &plugin.manifest;
        let config = manifest.effective_config(&e.config)?;
        let origins: Vec<(String, String, u16)> = e
            .grants
            .http
            .iter()
            .filter(|o| manifest.capabilities.declares_origin(o))
            .filter_map(|o| manifest::parse_origin(o))
            .collect();
        let mail = (manifest.capabilities.mail && e.grants.mail).then(|| self.options.mail_relay.clone()).flatten();
        let http = (!origins.is_empty()).then(|| wasm::http::HttpGrant {
            origins,
            secrets: self.options.http_secrets.clone(),
            allow_private: self.options.allow_private_network,
            timeout: self.options.http_timeout,
            max_response_bytes: self.options.http_max_response_bytes,
        });
        Ok(Some((
            plugin,
            wasm::CallContext {
                tenant: tenant_id.to_string(),
                order: None,
                plugin: name.to_string(),
                config_json: config.to_string(),
                http,
                mail,
                records: wasm::records::Records::default(),
            },
        )))
    }
}

impl Runtimes {
    /// Hands a notification to a tenant's channel (an enabled notifier plugin) in a fresh
    /// instance, and says how it went. Blocking: it may wait on HTTP or mail. Anything that
    /// goes wrong inside the plugin (a trap, the deadline) is temporary and retried; a channel
    /// that is no longer enabled is permanent.
    pub fn deliver(&self, store: &Store, tenant_id: &str, channel: &str, n: &Notification) -> Attempt {
        let (plugin, call) = match self.call_context(store, tenant_id, channel) {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Attempt::Permanent(format!(
                    "channel '{channel}' is not an enabled notifier of this tenant any more; enable it and re-drive"
                ));
            }
            Err(e) => return Attempt::Temporary(format!("channel '{channel}' could not be loaded: {e}")),
        };
        let (result, _stats) = self.wasm.deliver(&plugin, call, n);
        match result {
            Ok(attempt) => attempt,
            // A missing grant does not heal by waiting: the admin grants it and re-drives.
            Err(e @ StepError::Denied(_)) => Attempt::Permanent(format!("channel '{channel}' {e}")),
            Err(e) => Attempt::Temporary(format!("channel '{channel}' {e}")),
        }
    }
}

impl Runtimes {
    /// The tenant's connector: its first enabled connector plugin in run order, if any. It
    /// enriches order contexts and receives approved orders.
    pub fn connector_of(&self, store: &Store, tenant_id: &str) -> Result<Option<String>, RuntimeError> {
        let t = tenant_id.to_string();
        Ok(store.read_blocking(move |c| extensions::connector(c, &t))?)
    }

    /// Enriches an order's context from the tenant's connector before the steps run: the
    /// customer's profile and unpaid invoices (when the order names a customer) and the ERP's
    /// budgets (when it names a cost center), all from one fresh instance. Blocking. Returns the
    /// connector used; an error is the reason to hold the order, since deciding without the
    /// data would fail open.
    pub fn enrich(&self, store: &Store, tenant_id: &str, ctx: &mut OrderContext) -> Result<Option<String>, String> {
        // Orders with neither a customer nor a cost center need nothing: no lookup at all.
        let (customer_id, has_cost_center) = (ctx.order.customer_id.clone(), ctx.order.cost_center.is_some());
        if customer_id.is_none() && !has_cost_center {
            return Ok(None);
        }
        let connector = match self.connector_of(store, tenant_id) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("the tenant's connector could not be found: {e}")),
        };
        let (plugin, call) = match self.call_context(store, tenant_id, &connector) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("connector '{connector}' could not be loaded: {e}")),
        };
        let (result, _stats) = self.wasm.records(&plugin, call, ctx);
        let why = |what: &str, e: ConnectorError| {
            let (kind, m) = match e {
                ConnectorError::NotFound(m) => ("not found", m),
                ConnectorError::Unavailable(m) => ("unavailable", m),
                ConnectorError::Refused(m) => ("refused", m),
                ConnectorError::Failed(m) => ("failed", m),
            };
            format!("connector '{connector}' could not provide {what} ({kind}): {m}; resubmit when the ERP has it")
        };
        let records = result.map_err(|e| format!("connector '{connector}' {e}"))?;
        if let Some(customer) = records.customer {
            let id = customer_id.clone().unwrap_or_default();
            let customer = customer.map_err(|e| why(&format!("customer {id}"), e))?;
            customer.validate().map_err(|e| format!("connector '{connector}' returned an unusable customer: {e}"))?;
            ctx.customer = Some(customer);
        }
        let budgets = records.budgets;
        if let Some(budgets) = budgets {
            let code = ctx.order.cost_center.clone().unwrap_or_default();
            // An ERP that tracks no budget for the cost center is not an error.
            let budgets = match budgets {
                Err(ConnectorError::NotFound(_)) => Ok(Vec::new()),
                other => other,
            };
            ctx.budgets = budgets.map_err(|e| why(&format!("the budgets of cost center {code}"), e))?;
            if ctx.budgets.len() > MAX_BUDGETS {
                return Err(format!(
                    "connector '{connector}' reported {} budgets, more than the {MAX_BUDGETS} the host takes",
                    ctx.budgets.len()
                ));
            }
            for b in &ctx.budgets {
                b.validate().map_err(|e| format!("connector '{connector}' returned an unusable budget: {e}"))?;
            }
        }
        Ok(Some(connector))
    }

    /// The connector a delivery goes to, loaded with its call context: one no longer enabled is
    /// a permanent failure (the admin enables it and re-drives), one that cannot load a
    /// temporary one.
    fn delivering_connector(
        &self,
        store: &Store,
        tenant_id: &str,
        connector: &str,
    ) -> Result<(Arc<LoadedPlugin>, wasm::CallContext), Attempt> {
        match self.call_context(store, tenant_id, connector) {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(Attempt::Permanent(format!(
                "connector '{connector}' is not enabled for this tenant any more; enable it and re-drive"
            ))),
            Err(e) => Err(Attempt::Temporary(format!("connector '{connector}' could not be loaded: {e}"))),
        }
    }

    /// Sends an approved order to the ERP through a tenant's connector (`export-order`) and
    /// returns the ERP's reference. Blocking. An ERP that is down or slow is temporary and
    /// retried; a refusal, an unknown object or a missing grant is permanent.
    pub fn export(
        &self,
        store: &Store,
        tenant_id: &str,
        connector: &str,
        ctx: &OrderContext,
    ) -> Result<String, Attempt> {
        let (plugin, call) = self.delivering_connector(store, tenant_id, connector)?;
        let (result, _stats) = self.wasm.export_order(&plugin, call, ctx);
        match result {
            Ok(Ok(r)) if !r.trim().is_empty() && r.len() <= 200 => Ok(r),
            Ok(Ok(r)) => Err(Attempt::Permanent(format!(
                "connector '{connector}' returned an unusable ERP reference ({} characters)",
                r.len()
            ))),
            Ok(Err(ConnectorError::Unavailable(m))) => Err(Attempt::Temporary(format!("the ERP is unavailable: {m}"))),
            Ok(Err(ConnectorError::NotFound(m) | ConnectorError::Refused(m) | ConnectorError::Failed(m))) => {
                Err(Attempt::Permanent(format!("the ERP refused the order: {m}")))
            }
            Err(e @ StepError::Denied(_)) => Err(Attempt::Permanent(format!("connector '{connector}' {e}"))),
            Err(e) => Err(Attempt::Temporary(format!("connector '{connector}' {e}"))),
        }
    }
}

impl Runtimes {
    /// Books an approved customer order against the customer's credit line in the ERP through a
    /// tenant's connector (`update-credit`, API 1.1) and returns the line after it; `None` when
    /// the ERP keeps no credit line for the customer. Blocking. Like an export: an ERP that is
    /// down is temporary; a refusal, a missing grant or a connector built for API 1.0 (which has
    /// no such call) is permanent.
    pub fn update_credit(
        &self,
        store: &Store,
        tenant_id: &str,
        connector: &str,
        update: &CreditUpdate,
    ) -> Result<Option<CreditLine>, Attempt> {
        let (plugin, call) = self.delivering_connector(store, tenant_id, connector)?;
        let api = plugin.api.clone();
        let (result, _stats) = self.wasm.update_credit(&plugin, call, update);
        match result {
            Ok(None) => Err(Attempt::Permanent(format!(
                "connector '{connector}' implements plugin API {api}, which has no credit update: rebuild it against greenlight-plugin-api 1.1 and re-drive"
            ))),
            Ok(Some(Ok(line))) => Ok(line),
            Ok(Some(Err(ConnectorError::Unavailable(m)))) => {
                Err(Attempt::Temporary(format!("the ERP is unavailable: {m}")))
            }
            Ok(Some(Err(ConnectorError::NotFound(m) | ConnectorError::Refused(m) | ConnectorError::Failed(m)))) => {
                Err(Attempt::Permanent(format!("the ERP refused the credit update: {m}")))
            }
            Err(e @ StepError::Denied(_)) => Err(Attempt::Permanent(format!("connector '{connector}' {e}"))),
            Err(e) => Err(Attempt::Temporary(format!("connector '{connector}' {e}"))),
        }
    }
}

/// The manifest recorded at install.
fn stored_manifest(record: &PluginRecord) -> Result<Manifest, RuntimeError> {
    serde_json::from_value(record.manifest.clone()).map_err(|e| {
        ManifestError::Parse { path: format!("stored manifest of {}", record.name), reason: e.to_string() }.into()
    })
}

fn now() -> String {
    crate::domain::audit::timestamp(chrono::Utc::now())
}
