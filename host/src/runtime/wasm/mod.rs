//! The WASM runtime: sandboxed WebAssembly components implementing the plugin API.
//!
//! - One shared wasmtime [`Engine`] with the component model, the pooling allocator, fuel and
//!   epoch interruption (a ticker thread advances the epoch; each call gets a deadline).
//! - Components are compiled once at install, precompiled to an artifact cached by content hash
//!   and the engine's compatibility hash, and recorded with the artifact's SHA-256: the host only
//!   ever deserializes artifacts it produced, and recompiles when the engine changed.
//! - Before a component is accepted its imports are checked: only the plugin-API interfaces its
//!   world allows (and its manifest declares), and the WASI 0.2 interfaces the Rust standard
//!   library needs. Anything else is refused by name.
//! - Every call gets a fresh store and instance (from a cached `InstancePre`): no state survives
//!   between orders or tenants. An operator may let approval steps reuse a tenant's idle
//!   instances instead ([`instances`], off by default). WASI is an empty context: no files,
//!   environment, sockets or arguments; clocks are frozen and randomness is seeded, so steps stay
//!   deterministic; guest stdout/stderr go to bounded buffers and then to tracing.
//! - Failures are classified: deadline, fuel, memory limit, guest panic, bad output, denied
//!   capability.
//!
//! - Components built against plugin API 1.0.0 keep running: the host reads the version of the
//!   interface a component exports and binds it with the frozen 1.0.0 bindings.
//!
//! One host file per WIT interface: [`host`], [`http`], [`mail`], [`records`]; [`convert`] maps
//! WIT types to the domain; [`bindings`] holds the generated code; `sandbox` sets up and tears
//! down one call; `instances` keeps the idle instances steps may reuse; `contract` checks a
//! component's imports and exports; `connector` calls a connector of either API version.

pub mod bindings;
mod connector;
mod contract;
pub mod convert;
pub mod host;
pub mod http;
mod instances;
pub mod mail;
pub mod records;
mod sandbox;

use connector::ConnectorInstance;
pub use connector::{Answer, ConnectorError, Records};
pub use sandbox::PluginState;

use crate::domain::delivery::{Attempt, Notification};
use crate::domain::step::{OrderContext, StepOutput};
use crate::engine::{Lowered, Step, StepError, StepKind};
use crate::runtime::manifest::{Manifest, World};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

/// Limits every call runs under.
#[derive(Debug, Clone)]
pub struct WasmLimits {
    /// Wall-clock deadline of an approval-step call (pure computation).
    pub deadline: Duration,
    /// Wall-clock deadline of a connector or notifier call, which may wait on HTTP or mail.
    pub io_deadline: Duration,
    /// How often the epoch advances.
    pub tick: Duration,
    /// Fuel (roughly, wasm instructions) per call.
    pub fuel: u64,
    /// Linear memory per instance, bytes.
    pub memory_bytes: usize,
    /// Bytes of log output per call.
    pub log_bytes: usize,
    /// Bytes of stdout and of stderr kept per call.
    pub stdio_bytes: usize,
    /// Instances that may run at once.
    pub concurrent_instances: u32,
    /// Whether approval steps may run in an idle instance a call of the same tenant and step
    /// version left ([`instances`]): the operator's opt-in, off by default.
    pub reuse_step_instances: bool,
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmLimits {
            deadline: Duration::from_millis(50),
            io_deadline: Duration::from_secs(15),
            tick: Duration::from_millis(5),
            fuel: 200_000_000,
            memory_bytes: 32 << 20,
            log_bytes: 16 * 1024,
            stdio_bytes: 16 * 1024,
            concurrent_instances: 128,
            reuse_step_instances: false,
        }
    }
}

/// What can go wrong loading or installing a component.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The bytes are not a valid component, or it does not compile.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// It imports something this host does not provide or the manifest does not declare.
    #[error("the component is refused: {0}")]
    Imports(String),
    /// It does not export what its world requires.
    #[error("the component does not implement the `{world}` world: {reason}")]
    Exports {
        /// The world.
        world: &'static str,
        /// The type checker's message.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{what}: {reason}")]
    Io {
        /// Which file.
        what: String,
        /// Why.
        reason: String,
    },
    /// The engine could not be built.
    #[error("the WASM engine could not start: {0}")]
    Engine(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WasmError {
    let what = what.into();
    move |e| WasmError::Io { what, reason: e.to_string() }
}

/// Per-call facts and grants, fixed before the call starts.
#[derive(Clone, Default)]
pub struct CallContext {
    /// Tenant id.
    pub tenant: String,
    /// Order id, if the call is about one.
    pub order: Option<String>,
    /// Plugin name.
    pub plugin: String,
    /// The effective configuration, JSON.
    pub config_json: String,
    /// HTTP reach, if granted.
    pub http: Option<http::HttpGrant>,
    /// The mail relay, if granted.
    pub mail: Option<Arc<dyn crate::runtime::relay::MailRelay>>,
    /// The connector's records of the order (approval steps).
    pub records: records::Records,
}

/// The pre-instantiated form of a component, by world and by the plugin-API minor version it
/// was built against (1.0 components keep running on this 1.1 host).
#[derive(Clone)]
enum Pre {
    Step(bindings::step::ApprovalStepPre<PluginState>),
    StepV1_0(bindings::v1_0::step::ApprovalStepPre<PluginState>),
    Connector(bindings::connector::ConnectorPre<PluginState>),
    ConnectorV1_0(bindings::v1_0::connector::ConnectorPre<PluginState>),
    Notifier(bindings::notifier::NotifierPre<PluginState>),
    NotifierV1_0(bindings::v1_0::notifier::NotifierPre<PluginState>),
}

/// A loaded, checked plugin version.
pub struct LoadedPlugin {
    /// Extension name.
    pub name: String,
    /// SHA-256 of the component bytes.
    pub code_hash: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// The plugin-API version its component implements, e.g. `1.1.0`.
    pub api: String,
    pre: Pre,
    /// An approval step of API 1.1 that imports no WASI: its instances may be reused.
    reusable: bool,
}

/// Resources one call used.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CallStats {
    /// Wall-clock time, microseconds.
    pub micros: u64,
    /// Fuel consumed.
    pub fuel: u64,
    /// Peak linear memory, bytes.
    pub peak_memory_bytes: usize,
}

/// The shared WASM engine and the loaded plugins.
pub struct WasmRuntime {
    engine: Engine,
    limits: WasmLimits,
    engine_hash: String,
    linkers: [Linker<PluginState>; 3],
    loaded: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
    /// Idle step instances, when the operator allows reuse.
    idle: Option<instances::IdleInstances>,
}

/// Hex SHA-256 of bytes: a component's identity.
pub fn code_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct ShaHasher(Sha256);

impl std::hash::Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn world_index(w: World) -> usize {
    match w {
        World::ApprovalStep => 0,
        World::Connector => 1,
        World::Notifier => 2,
    }
}

impl WasmRuntime {
    /// Builds the engine and starts the epoch ticker.
    pub fn new(limits: WasmLimits) -> Result<Arc<WasmRuntime>, WasmError> {
        let config = engine_config(&limits);
        let engine = Engine::new(&config).map_err(|e| WasmError::Engine(format!("{e:#}")))?;
        let mut h = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        let engine_hash = hex::encode(&h.0.finalize()[..16]);
        let linkers = [World::ApprovalStep, World::Connector, World::Notifier].map(|w| Self::linker(&engine, w));
        let [a, b, c] = linkers;
        let linkers = [a?, b?, c?];
        let weak = engine.weak();
        let tick = limits.tick;
        std::thread::Builder::new()
            .name("greenlight-epoch".into())
            .spawn(move || {
                while let Some(e) = weak.upgrade() {
                    e.increment_epoch();
                    drop(e);
                    std::thread::sleep(tick);
                }
            })
            .map_err(|e| WasmError::Engine(e.to_string()))?;
        let idle = limits.reuse_step_instances.then(|| instances::IdleInstances::per_runtime(&limits));
        Ok(Arc::new(WasmRuntime { engine, limits, engine_hash, linkers, loaded: RwLock::new(HashMap::new()), idle }))
    }

    fn linker(engine: &Engine, world: World) -> Result<Linker<PluginState>, WasmError> {
        let mut linker = Linker::new(engine);
        let err = |e: wasmtime::Error| WasmError::Engine(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(err)?;
        match world {
            World::ApprovalStep => {
                bindings::step::ApprovalStep::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)
            }
            World::Connector => {
                bindings::connector::Connector::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)
            }
            World::Notifier => {
                bindings::notifier::Notifier::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)
            }
        }
        .map_err(err)?;
        Ok(linker)
    }

    /// The engine's compatibility key: artifacts made under another key are recompiled.
    pub fn engine_hash(&self) -> &str {
        &self.engine_hash
    }

    /// The limits in force.
    pub fn limits(&self) -> &WasmLimits {
        &self.limits
    }

    fn prepare(&self, component: &Component, manifest: &Manifest) -> Result<(Pre, String, bool), WasmError> {
        let wasi = self.check_imports(component, manifest)?;
        let (minor, version) = self.exported_api(component, manifest)?;
        let linker = &self.linkers[world_index(manifest.world)];
        let exports =
            |e: wasmtime::Error| WasmError::Exports { world: manifest.world.as_str(), reason: format!("{e:#}") };
        let pre = linker.instantiate_pre(component).map_err(exports)?;
        use bindings::v1_0;
        let pre = match (manifest.world, minor) {
            (World::ApprovalStep, 0) => Pre::StepV1_0(v1_0::step::ApprovalStepPre::new(pre).map_err(exports)?),
            (World::ApprovalStep, _) => Pre::Step(bindings::step::ApprovalStepPre::new(pre).map_err(exports)?),
            (World::Connector, 0) => Pre::ConnectorV1_0(v1_0::connector::ConnectorPre::new(pre).map_err(exports)?),
            (World::Connector, _) => Pre::Connector(bindings::connector::ConnectorPre::new(pre).map_err(exports)?),
            (World::Notifier, 0) => Pre::NotifierV1_0(v1_0::notifier::NotifierPre::new(pre).map_err(exports)?),
            (World::Notifier, _) => Pre::Notifier(bindings::notifier::NotifierPre::new(pre).map_err(exports)?),
        };
        let reusable = matches!(pre, Pre::Step(_)) && !wasi;
        Ok((pre, version, reusable))
    }

    /// Validates component bytes against a manifest: compiles, checks imports and exports.
    /// Returns the precompiled artifact.
    pub fn validate(&self, bytes: &[u8], manifest: &Manifest) -> Result<Vec<u8>, WasmError> {
        let component =
            Component::from_binary(&self.engine, bytes).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        self.prepare(&component, manifest)?;
        component.serialize().map_err(|e| WasmError::Compile(format!("{e:#}")))
    }

    /// Loads a component from the artifact cache (recompiling from the original when the cached
    /// artifact is missing, from another engine, or not the one the host recorded).
    /// `recorded` is the SHA-256 the host recorded for the artifact; the result says whether a
    /// new artifact was written (and its SHA-256, to record).
    pub fn load(
        &self,
        dir: &Path,
        name: &str,
        code_hash_hex: &str,
        manifest: &Manifest,
        recorded: Option<&str>,
    ) -> Result<(Arc<LoadedPlugin>, Option<String>), WasmError> {
        let artifact = artifact_path(dir, code_hash_hex, &self.engine_hash);
        let mut written = None;
        let cached = match (recorded, std::fs::read(&artifact)) {
            (Some(sha), Ok(bytes)) if code_hash(&bytes) == sha => {
                #[allow(unsafe_code)]
                // SAFETY: the artifact was produced by this host with an engine of the same
                // compatibility hash (it is in the file name), and its SHA-256 matches the one the
                // host recorded when it wrote it, so these are the bytes it produced.
                let c = unsafe { Component::deserialize(&self.engine, &bytes) };
                c.ok()
            }
            _ => None,
        };
        let component = match cached {
            Some(c) => c,
            None => {
                let original = original_path(dir, code_hash_hex);
                let bytes = std::fs::read(&original).map_err(io(format!("reading {}", original.display())))?;
                if code_hash(&bytes) != code_hash_hex {
                    return Err(WasmError::Compile(format!(
                        "{} does not match its recorded hash; reinstall the plugin",
                        original.display()
                    )));
                }
                let component =
                    Component::from_binary(&self.engine, &bytes).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
                let serialized = component.serialize().map_err(|e| WasmError::Compile(format!("{e:#}")))?;
                write_atomically(&artifact, &serialized)?;
                written = Some(code_hash(&serialized));
                component
            }
        };
        let (pre, api, reusable) = self.prepare(&component, manifest)?;
        let plugin = Arc::new(LoadedPlugin {
            name: name.to_string(),
            code_hash: code_hash_hex.to_string(),
            manifest: manifest.clone(),
            api,
            pre,
            reusable,
        });
        if let Ok(mut map) = self.loaded.write() {
            map.insert(name.to_string(), plugin.clone());
        }
        Ok((plugin, written))
    }

    /// Compiles and checks a component straight from bytes, without caching: for `step test`.
    pub fn load_bytes(&self, bytes: &[u8], manifest: &Manifest) -> Result<Arc<LoadedPlugin>, WasmError> {
        let component =
            Component::from_binary(&self.engine, bytes).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        let (pre, api, reusable) = self.prepare(&component, manifest)?;
        Ok(Arc::new(LoadedPlugin {
            name: manifest.name.clone(),
            code_hash: code_hash(bytes),
            manifest: manifest.clone(),
            api,
            pre,
            reusable,
        }))
    }

    /// The loaded plugin of this name, if it is the wanted version.
    pub fn cached(&self, name: &str, code_hash: &str) -> Option<Arc<LoadedPlugin>> {
        self.loaded.read().ok()?.get(name).filter(|p| p.code_hash == code_hash).cloned()
    }

    /// Runs an approval step's `evaluate` in a fresh instance.
    pub fn evaluate(
        &self,
        plugin: &LoadedPlugin,
        ctx: &OrderContext,
        call: CallContext,
    ) -> (Result<StepOutput, StepError>, CallStats) {
        let wit_ctx = convert::context(ctx);
        self.evaluate_lowered(plugin, ctx, &wit_ctx, call, false)
    }

    /// [`WasmRuntime::evaluate`] with the order already in WIT form (its `config_json` this
    /// call's configuration). With `reuse`, a step that qualifies runs in an idle instance of the
    /// same tenant, extension, version and configuration when the operator allows it
    /// ([`instances`]); otherwise, and always without `reuse`, in a fresh one.
    pub fn evaluate_lowered(
        &self,
        plugin: &LoadedPlugin,
        ctx: &OrderContext,
        wit_ctx: &bindings::types::OrderContext,
        call: CallContext,
        reuse: bool,
    ) -> (Result<StepOutput, StepError>, CallStats) {
        let call = CallContext { records: records::Records::of(ctx), ..call };
        let (result, stats) = match (&plugin.pre, &self.idle) {
            (Pre::Step(pre), Some(idle)) if reuse && plugin.reusable => {
                return self.call_reusing(idle, plugin, pre, call, |store, step| {
                    step.greenlight_plugin1_1_0_step().call_evaluate(&mut *store, wit_ctx).map(step_result)
                });
            }
            (Pre::Step(pre), _) => self.call(call, World::ApprovalStep, |store| {
                pre.instantiate(&mut *store)?.greenlight_plugin1_1_0_step().call_evaluate(&mut *store, wit_ctx)
            }),
            (Pre::StepV1_0(pre), _) => self.call(call, World::ApprovalStep, |store| {
                pre.instantiate(&mut *store)?.greenlight_plugin_step().call_evaluate(&mut *store, wit_ctx)
            }),
            _ => return Self::wrong_world(plugin, "an approval step"),
        };
        (result.and_then(step_result), stats)
    }

    /// Runs a function of a connector in a fresh instance.
    pub(crate) fn with_connector<R>(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        f: impl FnOnce(&mut Store<PluginState>, &ConnectorInstance) -> wasmtime::Result<R>,
    ) -> (Result<R, StepError>, CallStats) {
        match &plugin.pre {
            Pre::Connector(pre) => self.call(call, World::Connector, |store| {
                let connector = ConnectorInstance::V1_1(pre.instantiate(&mut *store)?);
                f(store, &connector)
            }),
            Pre::ConnectorV1_0(pre) => self.call(call, World::Connector, |store| {
                let connector = ConnectorInstance::V1_0(pre.instantiate(&mut *store)?);
                f(store, &connector)
            }),
            _ => Self::wrong_world(plugin, "a connector"),
        }
    }

    /// Runs a notifier's `deliver` in a fresh instance: delivered, or how it failed as the
    /// notifier judged it (temporary or permanent).
    pub fn deliver(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        notification: &Notification,
    ) -> (Result<Attempt, StepError>, CallStats) {
        let notification = convert::notification(notification);
        let (result, stats) = match &plugin.pre {
            Pre::Notifier(pre) => self.call(call, World::Notifier, |store| {
                pre.instantiate(&mut *store)?
                    .greenlight_plugin1_1_0_notifier_api()
                    .call_deliver(&mut *store, &notification)
            }),
            Pre::NotifierV1_0(pre) => self.call(call, World::Notifier, |store| {
                pre.instantiate(&mut *store)?.greenlight_plugin_notifier_api().call_deliver(&mut *store, &notification)
            }),
            _ => return Self::wrong_world(plugin, "a notifier"),
        };
        let attempt = result.map(|r| match r {
            Ok(()) => Attempt::Delivered,
            Err(bindings::types::NotifyError::Temporary(m)) => Attempt::Temporary(m),
            Err(bindings::types::NotifyError::Permanent(m)) => Attempt::Permanent(m),
        });
        (attempt, stats)
    }
}

/// The wasmtime configuration every plugin runs under (also used by the benchmark's raw baseline,
/// so "same configuration" is true by construction).
pub fn engine_config(limits: &WasmLimits) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    let n = limits.concurrent_instances.max(1) + instances::idle_capacity(limits);
    pool.total_component_instances(n)
        .total_core_instances(n * 4)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .max_memory_size(limits.memory_bytes.max(4 << 20));
    // Not `pagemap_scan` with memory kept resident, though it halves a call (measured: 35-40 µs
    // to 15-20 µs): wasmtime 48's scan resets only the dirty pages that are present, so a page
    // written and then swapped out or migrated would carry one call's data into the next
    // instance of that slot, possibly another tenant's (bytecodealliance/wasmtime#14357, open).
    // Every slot is unmapped and faulted in afresh until a release resets such pages too.
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(512 * 1024)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Where the original component of a code hash is kept.
pub fn original_path(dir: &Path, code_hash: &str) -> PathBuf {
    dir.join(format!("{code_hash}.wasm"))
}

/// Where the precompiled artifact for a code hash and engine is kept.
pub fn artifact_path(dir: &Path, code_hash: &str, engine_hash: &str) -> PathBuf {
    dir.join(format!("{code_hash}.{engine_hash}.cwasm"))
}

/// Writes a file so readers never see half of it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WasmError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("renaming {}", tmp.display())))
}

/// What a step's answer means to the host: its output checked, or its error.
fn step_result(r: Result<bindings::types::StepOutput, bindings::types::StepError>) -> Result<StepOutput, StepError> {
    match r {
        Ok(o) => convert::output(o),
        Err(bindings::types::StepError::InvalidInput(m)) => Err(StepError::Failed(format!("invalid input: {m}"))),
        Err(bindings::types::StepError::Failed(m)) => Err(StepError::Failed(m)),
    }
}

/// A WASM approval step bound to a tenant's call context.
pub struct WasmStep {
    /// The runtime.
    pub runtime: Arc<WasmRuntime>,
    /// The plugin version.
    pub plugin: Arc<LoadedPlugin>,
    /// Tenant id.
    pub tenant: String,
    /// Whether it may run in an idle instance (a tenant's chain when the operator allows it;
    /// never a replay, which must show what a fresh instance returns).
    pub reuse: bool,
}

impl Step for WasmStep {
    fn name(&self) -> &str {
        &self.plugin.name
    }

    fn kind(&self) -> StepKind {
        StepKind::Wasm
    }

    fn code_hash(&self) -> &str {
        &self.plugin.code_hash
    }

    fn evaluate(&self, ctx: &OrderContext) -> Result<StepOutput, StepError> {
        self.evaluate_in(ctx, &Lowered::default())
    }

    fn evaluate_in(&self, ctx: &OrderContext, lowered: &Lowered) -> Result<StepOutput, StepError> {
        // The configuration in JSON once per call, for the WIT record and the `config` import.
        let config_json = serde_json::to_string(&ctx.config).unwrap_or_else(|_| "{}".into());
        let call = CallContext {
            tenant: self.tenant.clone(),
            order: Some(ctx.order.id.clone()),
            plugin: self.plugin.name.clone(),
            config_json: config_json.clone(),
            http: None,
            mail: None,
            records: records::Records::default(),
        };
        lowered.with(
            || convert::context(ctx),
            |wit_ctx: &mut bindings::types::OrderContext| {
                wit_ctx.config_json = config_json;
                self.runtime.evaluate_lowered(&self.plugin, ctx, wit_ctx, call, self.reuse).0
            },
        )
    }
}
