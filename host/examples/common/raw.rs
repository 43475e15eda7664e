//! The raw baselines of one step call, as `step_calls` measures them: wasmtime calling a
//! component in a fresh instance from an `InstancePre`, on an engine with the host's
//! configuration but none of its limits bookkeeping, conversions or logging; and Rhai's
//! `call_fn` on the compiled AST with a prepared argument.

use greenlight_host::domain::step::OrderContext;
use greenlight_host::runtime::Runtimes;
use greenlight_host::runtime::wasm::bindings::{self, host, records, types};
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The bare store state: WASI (made at the first WASI call, as the host does) and the host
/// interface, answering with the step's config.
pub struct RawState {
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    config: String,
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()), table: &mut self.table }
    }
}
impl types::Host for RawState {}
impl records::Host for RawState {
    fn customer(&mut self) -> wasmtime::Result<Option<types::CustomerProfile>> {
        Ok(None)
    }
    fn open_invoices(&mut self) -> wasmtime::Result<Vec<types::OpenInvoice>> {
        Ok(Vec::new())
    }
    fn budgets(&mut self) -> wasmtime::Result<Vec<types::Budget>> {
        Ok(Vec::new())
    }
}
impl host::Host for RawState {
    fn log(&mut self, _: host::Level, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
    fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.config.clone())
    }
}

/// A component built against either plugin-API version, ready to instantiate.
enum Pre {
    V1_1(bindings::step::ApprovalStepPre<RawState>),
    V1_0(bindings::v1_0::step::ApprovalStepPre<RawState>),
}

/// One approval-step component under raw wasmtime.
pub struct RawWasm {
    engine: Engine,
    pre: Pre,
}

impl RawWasm {
    /// Compiles the component on an engine with the host's configuration.
    pub fn new(rt: &Runtimes, bytes: &[u8]) -> RawWasm {
        let config = greenlight_host::runtime::wasm::engine_config(&rt.options().wasm);
        let engine = Engine::new(&config).expect("engine");
        let component = Component::from_binary(&engine, bytes).expect("component");
        let mut linker: Linker<RawState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
        // The 1.1 imports also serve 1.0 components (semver-compatible names).
        bindings::step::ApprovalStep::add_to_linker::<RawState, HasSelf<RawState>>(&mut linker, |s| s).expect("link");
        let instance_pre = linker.instantiate_pre(&component).expect("instantiate_pre");
        let pre = match bindings::step::ApprovalStepPre::new(instance_pre.clone()) {
            Ok(p) => Pre::V1_1(p),
            Err(_) => Pre::V1_0(bindings::v1_0::step::ApprovalStepPre::new(instance_pre).expect("an approval step")),
        };
        RawWasm { engine, pre }
    }

    /// One `evaluate` in a fresh instance; panics if the step fails.
    pub fn call(&self, ctx: &types::OrderContext, config: &str) {
        let state = RawState { wasi: None, table: ResourceTable::new(), config: config.into() };
        let mut s = wasmtime::Store::new(&self.engine, state);
        s.set_fuel(u64::MAX / 2).expect("fuel");
        s.set_epoch_deadline(1_000_000);
        let out = match &self.pre {
            Pre::V1_1(pre) => {
                pre.instantiate(&mut s).expect("instance").greenlight_plugin1_1_0_step().call_evaluate(&mut s, ctx)
            }
            Pre::V1_0(pre) => {
                pre.instantiate(&mut s).expect("instance").greenlight_plugin_step().call_evaluate(&mut s, ctx)
            }
        };
        let _ = std::hint::black_box(out.expect("call").expect("evaluate"));
    }

    /// Calls `evaluate` `times` times on one instance, timing each call: the floor of a call,
    /// what is left when nothing is instantiated (the host never does this: no state may
    /// survive between orders).
    pub fn reused(&self, ctx: &types::OrderContext, config: &str, times: usize) -> Vec<std::time::Duration> {
        let state = RawState { wasi: None, table: ResourceTable::new(), config: config.into() };
        let mut s = wasmtime::Store::new(&self.engine, state);
        s.set_fuel(u64::MAX / 2).expect("fuel");
        s.set_epoch_deadline(u64::MAX / 2);
        let mut took = Vec::with_capacity(times);
        match &self.pre {
            Pre::V1_1(pre) => {
                let instance = pre.instantiate(&mut s).expect("instance");
                for _ in 0..times {
                    let t = std::time::Instant::now();
                    let out = instance.greenlight_plugin1_1_0_step().call_evaluate(&mut s, ctx);
                    let _ = std::hint::black_box(out.expect("call").expect("evaluate"));
                    took.push(t.elapsed());
                }
            }
            Pre::V1_0(pre) => {
                let instance = pre.instantiate(&mut s).expect("instance");
                for _ in 0..times {
                    let t = std::time::Instant::now();
                    let out = instance.greenlight_plugin_step().call_evaluate(&mut s, ctx);
                    let _ = std::hint::black_box(out.expect("call").expect("evaluate"));
                    took.push(t.elapsed());
                }
            }
        }
        took
    }
}

/// The WIT form of a context, as the host passes it.
pub fn wit_context(ctx: &OrderContext) -> types::OrderContext {
    greenlight_host::runtime::wasm::convert::context(ctx)
}

/// One compiled script under raw Rhai.
pub struct RawRhai {
    ast: std::sync::Arc<rhai::AST>,
}

impl RawRhai {
    /// Compiles the source with the host's engine.
    pub fn new(rt: &Runtimes, source: &str) -> RawRhai {
        RawRhai { ast: rt.rhai.compile(source).expect("script").1 }
    }

    /// One raw `call_fn` of `evaluate` with a prepared argument.
    pub fn call(&self, rt: &Runtimes, arg: &rhai::Dynamic) {
        let out: rhai::Dynamic =
            rt.rhai.engine().call_fn(&mut rhai::Scope::new(), &self.ast, "evaluate", (arg.clone(),)).expect("call_fn");
        let _ = std::hint::black_box(out);
    }
}
