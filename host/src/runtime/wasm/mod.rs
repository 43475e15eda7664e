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
//!   between orders or tenants. WASI is an empty context: no files, environment, sockets or
//!   arguments; clocks are frozen and randomness is seeded, so steps stay deterministic; guest
//!   stdout/stderr go to bounded buffers and then to tracing.
//! - Failures are classified: deadline, fuel, memory limit, guest panic, bad output, denied
//!   capability.
//!
//! - Components built against plugin API 1.0.0 keep running: the host reads the version of the
//!   interface a component exports and binds it with the frozen 1.0.0 bindings.
//!
//! One host file per WIT interface: [`host`], [`http`], [`mail`], [`records`]; [`convert`] maps
//! WIT types to the domain; [`bindings`] holds the generated code.

pub mod bindings;
pub mod convert;
pub mod host;
pub mod http;
pub mod mail;
pub mod records;

use crate::domain::extension::ApiVersion;
use crate::domain::step::{OrderContext, StepOutput};
use crate::engine::{Step, StepError, StepKind};
use crate::runtime::manifest::{Manifest, World};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

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
    pub mail: Option<Arc<dyn mail::MailRelay>>,
    /// The connector's records of the order (approval steps).
    pub records: records::Records,
}

/// Memory limiter that remembers the peak and fails with a typed error.
struct Limiter {
    max: usize,
    peak: usize,
}

/// The typed error of a memory limit hit, so it can be told apart from other traps.
#[derive(Debug)]
struct MemoryLimitExceeded {
    desired: usize,
    limit: usize,
}

impl std::fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wanted {} bytes of memory, the limit is {}", self.desired, self.limit)
    }
}

impl std::error::Error for MemoryLimitExceeded {}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            return Err(wasmtime::Error::new(MemoryLimitExceeded { desired, limit: self.max }));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error)
    }
}

/// Everything a running instance may touch.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    call: CallContext,
    log_budget: usize,
    last_error: Option<String>,
    denied: Option<String>,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A clock frozen at the epoch: steps get no time.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
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

/// A connector instance of either plugin-API version, called the same way.
pub enum ConnectorInstance {
    /// Built against 1.1: every call.
    V1_1(bindings::connector::Connector),
    /// Built against 1.0: no credit update.
    V1_0(bindings::v1_0::connector::Connector),
}

type Called<T> = wasmtime::Result<Result<T, bindings::types::ConnectorError>>;

impl ConnectorInstance {
    /// `customer`.
    pub fn customer(&self, s: &mut Store<PluginState>, id: &str) -> Called<bindings::types::CustomerProfile> {
        match self {
            ConnectorInstance::V1_1(c) => c.greenlight_plugin1_1_0_connector_api().call_customer(s, id),
            ConnectorInstance::V1_0(c) => c.greenlight_plugin_connector_api().call_customer(s, id),
        }
    }

    /// `open-invoices`.
    pub fn open_invoices(&self, s: &mut Store<PluginState>, id: &str) -> Called<Vec<bindings::types::OpenInvoice>> {
        match self {
            ConnectorInstance::V1_1(c) => c.greenlight_plugin1_1_0_connector_api().call_open_invoices(s, id),
            ConnectorInstance::V1_0(c) => c.greenlight_plugin_connector_api().call_open_invoices(s, id),
        }
    }

    /// `budgets`.
    pub fn budgets(
        &self,
        s: &mut Store<PluginState>,
        ctx: &bindings::types::OrderContext,
    ) -> Called<Vec<bindings::types::Budget>> {
        match self {
            ConnectorInstance::V1_1(c) => c.greenlight_plugin1_1_0_connector_api().call_budgets(s, ctx),
            ConnectorInstance::V1_0(c) => c.greenlight_plugin_connector_api().call_budgets(s, ctx),
        }
    }

    /// `export-order`.
    pub fn export_order(
        &self,
        s: &mut Store<PluginState>,
        ctx: &bindings::types::OrderContext,
    ) -> Called<bindings::types::ExportResult> {
        match self {
            ConnectorInstance::V1_1(c) => c.greenlight_plugin1_1_0_connector_api().call_export_order(s, ctx),
            ConnectorInstance::V1_0(c) => c.greenlight_plugin_connector_api().call_export_order(s, ctx),
        }
    }

    /// `update-credit`; `None` when the connector was built against 1.0, which has no such call.
    pub fn update_credit(
        &self,
        s: &mut Store<PluginState>,
        update: &bindings::types::CreditUpdate,
    ) -> Option<Called<Option<bindings::types::CreditLine>>> {
        match self {
            ConnectorInstance::V1_1(c) => Some(c.greenlight_plugin1_1_0_connector_api().call_update_credit(s, update)),
            ConnectorInstance::V1_0(_) => None,
        }
    }
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
        Ok(Arc::new(WasmRuntime { engine, limits, engine_hash, linkers, loaded: RwLock::new(HashMap::new()) }))
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

    /// Checks a component's imports against what its world and manifest allow.
    fn check_imports(&self, component: &Component, manifest: &Manifest) -> Result<(), WasmError> {
        let ty = component.component_type();
        for (name, _) in ty.imports(&self.engine) {
            let (iface, version) = name
                .rsplit_once('@')
                .ok_or_else(|| WasmError::Imports(format!("it imports `{name}` without a version")))?;
            if let Some(wasi) = iface.strip_prefix("wasi:") {
                if !version.starts_with("0.2.") {
                    return Err(WasmError::Imports(format!("it imports `{name}`; this host provides WASI 0.2 only")));
                }
                if wasi.starts_with("sockets/") || wasi.starts_with("http/") {
                    return Err(WasmError::Imports(format!(
                        "it imports `{name}`: plugins get no sockets; use greenlight:plugin/http through the host"
                    )));
                }
                if manifest.world == World::ApprovalStep && (wasi == "random/random" || wasi == "random/insecure") {
                    return Err(WasmError::Imports(format!(
                        "it imports `{name}`: approval steps must be deterministic"
                    )));
                }
                continue;
            }
            let Some(gl) = iface.strip_prefix("greenlight:plugin/") else {
                return Err(WasmError::Imports(format!("it imports `{name}`, which this host does not provide")));
            };
            if !ApiVersion::parse(version).is_some_and(|v| v.runs_on(ApiVersion::HOST)) {
                let host = ApiVersion::HOST;
                return Err(WasmError::Imports(format!(
                    "it imports `{name}`, but this host provides greenlight:plugin@{host}: rebuild it against greenlight-plugin-api {}.{} or upgrade the host",
                    host.major, host.minor
                )));
            }
            let allowed = match (gl, manifest.world) {
                ("types" | "host", _) => true,
                ("records", World::ApprovalStep) => true,
                ("http", World::Connector | World::Notifier) => {
                    if manifest.capabilities.http.is_empty() {
                        return Err(WasmError::Imports(format!(
                            "it imports `{name}` but its manifest declares no [capabilities] http origins"
                        )));
                    }
                    true
                }
                ("mail", World::Notifier) => {
                    if !manifest.capabilities.mail {
                        return Err(WasmError::Imports(format!(
                            "it imports `{name}` but its manifest does not declare mail = true"
                        )));
                    }
                    true
                }
                _ => false,
            };
            if !allowed {
                return Err(WasmError::Imports(format!(
                    "it imports `{name}`, which `{}` plugins may not use",
                    manifest.world.as_str()
                )));
            }
        }
        Ok(())
    }

    /// The plugin-API version of the interface a component exports for its world, e.g.
    /// `(1, 0, "1.0.0")`, which must agree with its manifest's `api`.
    fn exported_api(&self, component: &Component, manifest: &Manifest) -> Result<(u64, String), WasmError> {
        let iface = match manifest.world {
            World::ApprovalStep => "step",
            World::Connector => "connector-api",
            World::Notifier => "notifier-api",
        };
        let prefix = format!("greenlight:plugin/{iface}@");
        let missing = || WasmError::Exports {
            world: manifest.world.as_str(),
            reason: format!("it exports no `greenlight:plugin/{iface}` interface"),
        };
        let ty = component.component_type();
        let version = ty
            .exports(&self.engine)
            .find_map(|(name, _)| name.strip_prefix(&prefix).map(str::to_string))
            .ok_or_else(missing)?;
        let host = ApiVersion::HOST;
        let exported = match ApiVersion::parse(&version) {
            Some(v) if v.runs_on(host) => v,
            _ => {
                return Err(WasmError::Imports(format!(
                    "it implements greenlight:plugin@{version}, but this host speaks {host}: rebuild it against greenlight-plugin-api {}.{} or upgrade the host",
                    host.major, host.minor
                )));
            }
        };
        let minor = exported.minor;
        let declared = manifest.api_version();
        if declared.map(|d| (d.major, d.minor)) != Some((exported.major, exported.minor)) {
            return Err(WasmError::Imports(format!(
                "its manifest says api = \"{}\" but the component implements greenlight:plugin@{version}: set api = \"{version}\" in manifest.toml",
                manifest.api
            )));
        }
        Ok((minor, version))
    }

    fn prepare(&self, component: &Component, manifest: &Manifest) -> Result<(Pre, String), WasmError> {
        self.check_imports(component, manifest)?;
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
        Ok((pre, version))
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
        let (pre, api) = self.prepare(&component, manifest)?;
        let plugin = Arc::new(LoadedPlugin {
            name: name.to_string(),
            code_hash: code_hash_hex.to_string(),
            manifest: manifest.clone(),
            api,
            pre,
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
        let (pre, api) = self.prepare(&component, manifest)?;
        Ok(Arc::new(LoadedPlugin {
            name: manifest.name.clone(),
            code_hash: code_hash(bytes),
            manifest: manifest.clone(),
            api,
            pre,
        }))
    }

    /// The loaded plugin of this name, if it is the wanted version.
    pub fn cached(&self, name: &str, code_hash: &str) -> Option<Arc<LoadedPlugin>> {
        self.loaded.read().ok()?.get(name).filter(|p| p.code_hash == code_hash).cloned()
    }

    fn store(
        &self,
        call: CallContext,
        world: World,
    ) -> Result<(Store<PluginState>, MemoryOutputPipe, MemoryOutputPipe), wasmtime::Error> {
        let stdout = MemoryOutputPipe::new(self.limits.stdio_bytes);
        let stderr = MemoryOutputPipe::new(self.limits.stdio_bytes);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = PluginState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter { max: self.limits.memory_bytes, peak: 0 },
            call,
            log_budget: self.limits.log_bytes,
            last_error: None,
            denied: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(self.limits.fuel)?;
        let deadline = if world == World::ApprovalStep { self.limits.deadline } else { self.limits.io_deadline };
        let ticks = deadline.as_micros().div_ceil(self.limits.tick.as_micros().max(1)).max(1) as u64;
        store.set_epoch_deadline(ticks);
        Ok((store, stdout, stderr))
    }

    fn finish(
        &self,
        store: &mut Store<PluginState>,
        out: &MemoryOutputPipe,
        err: &MemoryOutputPipe,
        started: Instant,
    ) -> CallStats {
        let plugin = store.data().call.plugin.clone();
        for (name, pipe) in [("stdout", out), ("stderr", err)] {
            let bytes = pipe.contents();
            if !bytes.is_empty() {
                tracing::info!(target: "greenlight::plugin", plugin, stream = name, "{}", String::from_utf8_lossy(&bytes));
            }
        }
        CallStats {
            micros: started.elapsed().as_micros() as u64,
            fuel: self.limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)),
            peak_memory_bytes: store.data().limiter.peak,
        }
    }

    /// One call in a fresh store: limits set, `body` instantiates and calls, stdio flushed to the
    /// log, and the failure classified. A denied capability is a failure of its own, even if the
    /// guest swallowed the error.
    fn call<R>(
        &self,
        call: CallContext,
        world: World,
        body: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> (Result<R, StepError>, CallStats) {
        let started = Instant::now();
        let (mut store, out, err) = match self.store(call, world) {
            Ok(s) => s,
            Err(e) => return (Err(StepError::Failed(format!("{e:#}"))), CallStats::default()),
        };
        let result = body(&mut store);
        let stats = self.finish(&mut store, &out, &err, started);
        if let Some(why) = store.data().denied.clone() {
            return (Err(StepError::Denied(why)), stats);
        }
        (result.map_err(|e| classify(&e, store.data())), stats)
    }

    fn wrong_world<R>(plugin: &LoadedPlugin, what: &str) -> (Result<R, StepError>, CallStats) {
        (Err(StepError::Failed(format!("plugin '{}' is not {what}", plugin.name))), CallStats::default())
    }

    /// Runs an approval step's `evaluate` in a fresh instance.
    pub fn evaluate(
        &self,
        plugin: &LoadedPlugin,
        ctx: &OrderContext,
        call: CallContext,
    ) -> (Result<StepOutput, StepError>, CallStats) {
        let wit_ctx = convert::context(ctx);
        let call = CallContext { records: records::Records::of(ctx), ..call };
        let (result, stats) = match &plugin.pre {
            Pre::Step(pre) => self.call(call, World::ApprovalStep, |store| {
                pre.instantiate(&mut *store)?.greenlight_plugin1_1_0_step().call_evaluate(&mut *store, &wit_ctx)
            }),
            Pre::StepV1_0(pre) => self.call(call, World::ApprovalStep, |store| {
                pre.instantiate(&mut *store)?.greenlight_plugin_step().call_evaluate(&mut *store, &wit_ctx)
            }),
            _ => return Self::wrong_world(plugin, "an approval step"),
        };
        let result = result.and_then(|r| match r {
            Ok(o) => convert::output(o),
            Err(bindings::types::StepError::InvalidInput(m)) => Err(StepError::Failed(format!("invalid input: {m}"))),
            Err(bindings::types::StepError::Failed(m)) => Err(StepError::Failed(m)),
        });
        (result, stats)
    }

    /// Runs a function of a connector in a fresh instance.
    pub fn with_connector<R>(
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

    /// Runs a notifier's `deliver` in a fresh instance.
    pub fn deliver(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        notification: &bindings::types::Notification,
    ) -> (Result<Result<(), bindings::types::NotifyError>, StepError>, CallStats) {
        match &plugin.pre {
            Pre::Notifier(pre) => self.call(call, World::Notifier, |store| {
                pre.instantiate(&mut *store)?
                    .greenlight_plugin1_1_0_notifier_api()
                    .call_deliver(&mut *store, notification)
            }),
            Pre::NotifierV1_0(pre) => self.call(call, World::Notifier, |store| {
                pre.instantiate(&mut *store)?.greenlight_plugin_notifier_api().call_deliver(&mut *store, notification)
            }),
            _ => Self::wrong_world(plugin, "a notifier"),
        }
    }
}

/// The wasmtime configuration every plugin runs under (also used by the benchmark's raw baseline,
/// so "same configuration" is true by construction).
pub fn engine_config(limits: &WasmLimits) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    let n = limits.concurrent_instances.max(1);
    pool.total_component_instances(n)
        .total_core_instances(n * 4)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .max_memory_size(limits.memory_bytes.max(4 << 20));
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(512 * 1024)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Tells the failure kinds apart.
fn classify(e: &wasmtime::Error, state: &PluginState) -> StepError {
    if let Some(t) = e.downcast_ref::<Trap>() {
        return match *t {
            Trap::Interrupt => StepError::Deadline("the plugin's time limit".into()),
            Trap::OutOfFuel => StepError::OutOfFuel("the plugin's fuel".into()),
            Trap::UnreachableCodeReached => StepError::Panicked(
                state.last_error.clone().unwrap_or_else(|| "the plugin aborted without a message".into()),
            ),
            Trap::StackOverflow => StepError::MemoryLimit("stack overflow".into()),
            other => StepError::Failed(format!("the plugin trapped: {other}")),
        };
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return StepError::MemoryLimit(m.to_string());
    }
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return StepError::Failed("the host is running too many plugin calls at once; retry".into());
    }
    if let Some(why) = &state.denied {
        return StepError::Denied(why.clone());
    }
    StepError::Failed(format!("{e:#}"))
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

/// A WASM approval step bound to a tenant's call context.
pub struct WasmStep {
    /// The runtime.
    pub runtime: Arc<WasmRuntime>,
    /// The plugin version.
    pub plugin: Arc<LoadedPlugin>,
    /// Tenant id.
    pub tenant: String,
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
        let call = CallContext {
            tenant: self.tenant.clone(),
            order: Some(ctx.order.id.clone()),
            plugin: self.plugin.name.clone(),
            config_json: serde_json::to_string(&ctx.config).unwrap_or_else(|_| "{}".into()),
            http: None,
            mail: None,
            records: records::Records::default(),
        };
        self.runtime.evaluate(&self.plugin, ctx, call).0
    }
}
