//! The sandbox of one call: a fresh store with its memory limiter, fuel and epoch deadline, an
//! empty WASI context (frozen clocks, seeded randomness, no files, sockets or environment),
//! bounded stdout and stderr, and the classification of how a call failed. The WASI context is
//! made only when the guest first calls WASI: a component that imports nothing but the plugin
//! API (the shipped approval steps) never pays for it.

use super::bindings::step::{ApprovalStep, ApprovalStepPre};
use super::instances::{IdleInstances, Key};
use super::{CallContext, CallStats, LoadedPlugin, WasmRuntime};
use crate::engine::StepError;
use crate::runtime::manifest::World;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

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

/// The WASI context of a call and the pipes behind its stdout and stderr.
struct Wasi {
    ctx: WasiCtx,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Wasi {
    fn new(stdio_bytes: usize) -> Wasi {
        let stdout = MemoryOutputPipe::new(stdio_bytes);
        let stderr = MemoryOutputPipe::new(stdio_bytes);
        let ctx = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Wasi { ctx, stdout, stderr }
    }
}

/// Everything a running instance may touch.
pub struct PluginState {
    /// Made at the guest's first WASI call.
    wasi: Option<Wasi>,
    stdio_bytes: usize,
    table: ResourceTable,
    limiter: Limiter,
    /// What this call may do and for whom.
    pub(super) call: CallContext,
    /// Bytes of log the plugin may still write.
    pub(super) log_budget: usize,
    /// The last error the plugin logged: a guest panic's message.
    pub(super) last_error: Option<String>,
    /// A capability the plugin asked for and was refused.
    pub(super) denied: Option<String>,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let stdio_bytes = self.stdio_bytes;
        let wasi = self.wasi.get_or_insert_with(|| Wasi::new(stdio_bytes));
        WasiCtxView { ctx: &mut wasi.ctx, table: &mut self.table }
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

impl WasmRuntime {
    fn store(&self, call: CallContext, world: World) -> Result<Store<PluginState>, wasmtime::Error> {
        let state = PluginState {
            wasi: None,
            stdio_bytes: self.limits.stdio_bytes,
            table: ResourceTable::new(),
            limiter: Limiter { max: self.limits.memory_bytes, peak: 0 },
            call,
            log_budget: self.limits.log_bytes,
            last_error: None,
            denied: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        self.arm(&mut store, world)?;
        Ok(store)
    }

    /// A call's own fuel and deadline, from now.
    fn arm(&self, store: &mut Store<PluginState>, world: World) -> Result<(), wasmtime::Error> {
        store.set_fuel(self.limits.fuel)?;
        let deadline = if world == World::ApprovalStep { self.limits.deadline } else { self.limits.io_deadline };
        let ticks = deadline.as_micros().div_ceil(self.limits.tick.as_micros().max(1)).max(1) as u64;
        store.set_epoch_deadline(ticks);
        Ok(())
    }

    /// A store an earlier call left idle, made ready for this call: its context and grants, a
    /// full log budget, no error of the last call, its own fuel and deadline.
    fn reset(&self, store: &mut Store<PluginState>, call: CallContext) -> Result<(), wasmtime::Error> {
        let state = store.data_mut();
        state.call = call;
        state.log_budget = self.limits.log_bytes;
        state.last_error = None;
        state.denied = None;
        self.arm(store, World::ApprovalStep)
    }

    fn finish(&self, store: &mut Store<PluginState>, started: Instant) -> CallStats {
        let plugin = store.data().call.plugin.clone();
        if let Some(wasi) = &store.data().wasi {
            for (name, pipe) in [("stdout", &wasi.stdout), ("stderr", &wasi.stderr)] {
                let bytes = pipe.contents();
                if !bytes.is_empty() {
                    tracing::info!(target: "greenlight::plugin", plugin, stream = name, "{}", String::from_utf8_lossy(&bytes));
                }
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
    pub(super) fn call<R>(
        &self,
        call: CallContext,
        world: World,
        body: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> (Result<R, StepError>, CallStats) {
        let started = Instant::now();
        let mut store = match self.store(call, world) {
            Ok(s) => s,
            Err(e) => return (Err(StepError::Failed(format!("{e:#}"))), CallStats::default()),
        };
        let result = body(&mut store);
        self.conclude(&mut store, started, result)
    }

    /// How a call ended: its stdio flushed and its stats taken, a denied capability a failure of
    /// its own even if the guest swallowed the error, any other failure classified.
    fn conclude<R>(
        &self,
        store: &mut Store<PluginState>,
        started: Instant,
        result: wasmtime::Result<R>,
    ) -> (Result<R, StepError>, CallStats) {
        let stats = self.finish(store, started);
        if let Some(why) = store.data().denied.clone() {
            return (Err(StepError::Denied(why)), stats);
        }
        (result.map_err(|e| classify(&e, store.data())), stats)
    }

    /// An approval step's call in an idle instance of the same tenant, extension, version and
    /// configuration if there is one, else in a fresh one. The instance is kept for the next call
    /// only if `body` returned an output the host accepted ([`super::instances`]).
    pub(super) fn call_reusing<T>(
        &self,
        idle: &IdleInstances,
        plugin: &LoadedPlugin,
        pre: &ApprovalStepPre<PluginState>,
        call: CallContext,
        body: impl FnOnce(&mut Store<PluginState>, &ApprovalStep) -> wasmtime::Result<Result<T, StepError>>,
    ) -> (Result<T, StepError>, CallStats) {
        let started = Instant::now();
        let key = Key {
            tenant: call.tenant.clone(),
            extension: plugin.name.clone(),
            code_hash: plugin.code_hash.clone(),
            config_json: call.config_json.clone(),
        };
        let (store, instance) = match idle.take(&key) {
            Some((mut store, instance)) => (self.reset(&mut store, call).map(|()| store), Some(instance)),
            None => (self.store(call, World::ApprovalStep), None),
        };
        let mut store = match store {
            Ok(store) => store,
            Err(e) => return (Err(StepError::Failed(format!("{e:#}"))), CallStats::default()),
        };
        let result = match instance {
            Some(i) => Ok(i),
            None => pre.instantiate(&mut store),
        }
        .and_then(|i| body(&mut store, &i).map(|r| (r, i)));
        let (result, stats) = self.conclude(&mut store, started, result);
        match result {
            Ok((Ok(output), instance)) => {
                idle.give(key, (store, instance));
                (Ok(output), stats)
            }
            Ok((Err(e), _)) | Err(e) => (Err(e), stats),
        }
    }

    pub(super) fn wrong_world<R>(plugin: &LoadedPlugin, what: &str) -> (Result<R, StepError>, CallStats) {
        (Err(StepError::Failed(format!("plugin '{}' is not {what}", plugin.name))), CallStats::default())
    }
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
