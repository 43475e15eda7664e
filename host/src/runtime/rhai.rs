//! The Rhai runtime. One engine for the whole host, built once with limits on operations, call
//! depth, expression depth, string/array/map sizes, variables and functions; `eval` and modules
//! are disabled, and there is no clock, so scripts stay deterministic. A script defines
//! `fn evaluate(ctx)` and returns a map in the step-output shape.
//!
//! Each call also runs under a wall-clock deadline (the operation count alone lets a script
//! that sorts large arrays in a loop run for a minute) and a bound on what `print` and `debug`
//! may write to the host's log. Compiled scripts are cached per tenant and name: replacing a
//! script drops its old compilation, and the cache as a whole is bounded.

use crate::domain::step::{OrderContext, StepOutput};
use crate::engine::{Step, StepError, StepKind};
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Scope};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Limits every script runs under.
#[derive(Debug, Clone)]
pub struct RhaiLimits {
    /// Operations per call (Rhai's fuel).
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Expression nesting at global level and inside functions.
    pub max_expr_depth: (usize, usize),
    /// Bytes in one string.
    pub max_string_size: usize,
    /// Elements in one array.
    pub max_array_size: usize,
    /// Entries in one object map.
    pub max_map_size: usize,
    /// Variables alive at once.
    pub max_variables: usize,
    /// Functions one script may define.
    pub max_functions: usize,
    /// Bytes of source.
    pub max_source_size: usize,
    /// Wall-clock time one call may take.
    pub deadline: Duration,
    /// Bytes one call may write through `print` and `debug`; the rest is dropped.
    pub max_print_bytes: usize,
    /// Bytes of source whose compilations the cache keeps; the least recently used go first.
    pub max_cached_source_bytes: usize,
}

impl Default for RhaiLimits {
    fn default() -> Self {
        RhaiLimits {
            max_operations: 500_000,
            max_call_levels: 32,
            max_expr_depth: (64, 32),
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            max_variables: 256,
            max_functions: 256,
            max_source_size: 256 * 1024,
            deadline: Duration::from_millis(100),
            max_print_bytes: 4 * 1024,
            max_cached_source_bytes: 8 * 1024 * 1024,
        }
    }
}

/// A script that does not compile, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct ScriptError {
    /// What is wrong.
    pub message: String,
    /// 1-based line, 0 if unknown.
    pub line: usize,
    /// 1-based column, 0 if unknown.
    pub column: usize,
}

/// The shared engine and the compiled-script cache.
pub struct RhaiRuntime {
    engine: Arc<Engine>,
    limits: RhaiLimits,
    cache: Mutex<Cache>,
}

/// Compilations by source hash, and which hash each tenant's script name runs now.
#[derive(Default)]
struct Cache {
    compiled: HashMap<String, Compiled>,
    /// (tenant, script name) → source hash.
    current: HashMap<(String, String), String>,
    source_bytes: usize,
    clock: u64,
}

struct Compiled {
    ast: Arc<AST>,
    source_bytes: usize,
    /// How many (tenant, name) pairs run this version; at zero it is dropped.
    users: usize,
    last_used: u64,
}

impl Cache {
    /// Points (tenant, name) at `hash`, dropping the compilation it pointed at before if nobody
    /// else runs it.
    fn assign(&mut self, tenant: &str, name: &str, hash: &str) {
        let key = (tenant.to_string(), name.to_string());
        match self.current.get(&key) {
            Some(h) if h == hash => return,
            Some(old) => {
                let old = old.clone();
                self.release(&old);
            }
            None => {}
        }
        if let Some(c) = self.compiled.get_mut(hash) {
            c.users += 1;
        }
        self.current.insert(key, hash.to_string());
    }

    fn release(&mut self, hash: &str) {
        if let Some(c) = self.compiled.get_mut(hash) {
            c.users = c.users.saturating_sub(1);
            if c.users == 0 {
                self.drop_compiled(hash);
            }
        }
    }

    fn drop_compiled(&mut self, hash: &str) {
        if let Some(c) = self.compiled.remove(hash) {
            self.source_bytes -= c.source_bytes;
        }
    }

    fn insert(&mut self, hash: &str, ast: Arc<AST>, source_bytes: usize, limit: usize) {
        let users = self.current.values().filter(|h| *h == hash).count();
        self.clock += 1;
        self.source_bytes += source_bytes;
        self.compiled.insert(hash.to_string(), Compiled { ast, source_bytes, users, last_used: self.clock });
        // Over the bound, the least recently used go (calls holding their `Arc` finish on them).
        while self.source_bytes > limit && self.compiled.len() > 1 {
            let Some(oldest) = self.compiled.iter().min_by_key(|(_, c)| c.last_used).map(|(h, _)| h.clone()) else {
                break;
            };
            self.drop_compiled(&oldest);
            self.current.retain(|_, h| *h != oldest);
        }
    }

    fn get(&mut self, hash: &str) -> Option<Arc<AST>> {
        self.clock += 1;
        let clock = self.clock;
        self.compiled.get_mut(hash).map(|c| {
            c.last_used = clock;
            c.ast.clone()
        })
    }
}

/// SHA-256 of a script's source, hex: its identity in caches and evaluation records.
pub fn source_hash(source: &str) -> String {
    hex::encode(Sha256::digest(source.as_bytes()))
}

/// What the call running on this thread may still spend: its deadline and its log output.
/// Rhai's progress and print callbacks are engine-wide, and a call runs on one thread.
#[derive(Clone, Copy)]
struct CallBudget {
    deadline: Instant,
    print_left: usize,
    dropped: usize,
}

thread_local! {
    static CALL: Cell<Option<CallBudget>> = const { Cell::new(None) };
}

/// How many operations pass between two looks at the clock: a clock read per operation would
/// cost more than the operations of a typical script.
const CLOCK_EVERY: u64 = 64;

/// Writes a script's `print`/`debug` line if the call's budget allows; counts it as dropped if not.
fn log_bounded(line: &str, write: impl FnOnce(&str)) {
    CALL.with(|c| {
        let Some(mut budget) = c.get() else { return };
        // A line costs at least one byte, so a loop printing empty lines is bounded too.
        let cost = line.len().max(1);
        if cost <= budget.print_left {
            budget.print_left -= cost;
            write(line);
        } else {
            budget.print_left = 0;
            budget.dropped = budget.dropped.saturating_add(cost);
        }
        c.set(Some(budget));
    });
}

impl RhaiRuntime {
    /// Builds the engine with the limits.
    pub fn new(limits: RhaiLimits) -> RhaiRuntime {
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_expr_depths(limits.max_expr_depth.0, limits.max_expr_depth.1)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_variables(limits.max_variables)
            .set_max_functions(limits.max_functions)
            .set_strict_variables(true)
            .disable_symbol("eval")
            .disable_symbol("import");
        engine.on_progress(|ops| {
            if ops % CLOCK_EVERY != 0 {
                return None;
            }
            let late = CALL.with(|c| c.get().is_some_and(|b| Instant::now() >= b.deadline));
            late.then(|| Dynamic::from("deadline"))
        });
        engine.on_print(|s| log_bounded(s, |s| tracing::info!(target: "greenlight::script", "{s}")));
        engine.on_debug(|s, src, pos| {
            log_bounded(s, |s| tracing::debug!(target: "greenlight::script", source = src, position = %pos, "{s}"))
        });
        RhaiRuntime { engine: Arc::new(engine), limits, cache: Mutex::new(Cache::default()) }
    }

    /// Compiles a script and checks it defines `fn evaluate(ctx)`. Nothing is cached: this is
    /// the check before a script is stored.
    pub fn compile(&self, source: &str) -> Result<(String, Arc<AST>), ScriptError> {
        if source.len() > self.limits.max_source_size {
            return Err(ScriptError {
                message: format!("the script is larger than {} bytes", self.limits.max_source_size),
                line: 0,
                column: 0,
            });
        }
        let ast = self.engine.compile(source).map_err(|e| ScriptError {
            message: e.0.to_string(),
            line: e.1.line().unwrap_or(0),
            column: e.1.position().unwrap_or(0),
        })?;
        if !ast.iter_functions().any(|f| f.name == "evaluate" && f.params.len() == 1) {
            return Err(ScriptError {
                message: "the script must define `fn evaluate(ctx)` returning a map (see scripts/README.md)".into(),
                line: 1,
                column: 1,
            });
        }
        Ok((source_hash(source), Arc::new(ast)))
    }

    /// A step running `tenant`'s script `name`, compiled once per source. A new source under
    /// the same tenant and name replaces the old compilation, which is dropped once no other
    /// tenant runs the same source.
    pub fn step(&self, tenant: &str, name: &str, source: &str) -> Result<RhaiStep, ScriptError> {
        self.step_hashed(tenant, name, &source_hash(source), source)
    }

    /// [`RhaiRuntime::step`] for a source whose SHA-256 is known (the store keeps it with the
    /// script), so the chain built for every evaluation does not rehash every script. A cached
    /// compilation costs one lock.
    pub fn step_hashed(&self, tenant: &str, name: &str, hash: &str, source: &str) -> Result<RhaiStep, ScriptError> {
        let cached = self.cache.lock().ok().and_then(|mut c| {
            let ast = c.get(hash)?;
            c.assign(tenant, name, hash);
            Some(ast)
        });
        let ast = match cached {
            Some(ast) => ast,
            None => {
                // Compiled outside the lock, so a large script does not stall other tenants;
                // what is compiled must be what the hash names, or the evaluation record would
                // name other code than what ran.
                let (actual, ast) = self.compile(source)?;
                if actual != hash {
                    return Err(ScriptError {
                        message: format!("the stored script does not match its hash {hash}: install it again"),
                        line: 0,
                        column: 0,
                    });
                }
                if let Ok(mut c) = self.cache.lock() {
                    if !c.compiled.contains_key(hash) {
                        c.insert(hash, ast.clone(), source.len(), self.limits.max_cached_source_bytes);
                    }
                    c.assign(tenant, name, hash);
                }
                ast
            }
        };
        Ok(RhaiStep {
            name: name.to_string(),
            hash: hash.to_string(),
            ast,
            engine: self.engine.clone(),
            deadline: self.limits.deadline,
            max_print_bytes: self.limits.max_print_bytes,
        })
    }

    /// A step of one version of a script, outside the cache (replaying an old version must not
    /// push out the one the tenant runs now); the source must hash to `hash`.
    pub fn version(&self, name: &str, hash: &str, source: &str) -> Result<RhaiStep, ScriptError> {
        let (actual, ast) = self.compile(source)?;
        if actual != hash {
            return Err(ScriptError {
                message: format!("the stored version does not match its hash {hash}"),
                line: 0,
                column: 0,
            });
        }
        Ok(RhaiStep {
            name: name.to_string(),
            hash: actual,
            ast,
            engine: self.engine.clone(),
            deadline: self.limits.deadline,
            max_print_bytes: self.limits.max_print_bytes,
        })
    }

    /// The shared engine, so benchmarks can measure a raw `call_fn` against the host's path.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// One compiled script as a step.
pub struct RhaiStep {
    name: String,
    hash: String,
    ast: Arc<AST>,
    engine: Arc<Engine>,
    deadline: Duration,
    max_print_bytes: usize,
}

fn classify(e: &EvalAltResult) -> StepError {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => classify(inner),
        EvalAltResult::ErrorTooManyOperations(_) => StepError::OutOfFuel("Rhai operation limit".into()),
        EvalAltResult::ErrorStackOverflow(_) => StepError::MemoryLimit("call depth limit".into()),
        EvalAltResult::ErrorDataTooLarge(what, _) => StepError::MemoryLimit(what.clone()),
        EvalAltResult::ErrorTooManyVariables(_) => StepError::MemoryLimit("variable limit".into()),
        EvalAltResult::ErrorTerminated(_, _) => StepError::Deadline("the script's wall-clock deadline".into()),
        EvalAltResult::ErrorRuntime(v, pos) => StepError::Failed(format!("script threw {v} at {pos}")),
        other => StepError::Failed(other.to_string()),
    }
}

impl Step for RhaiStep {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> StepKind {
        StepKind::Script
    }

    fn code_hash(&self) -> &str {
        &self.hash
    }

    fn evaluate(&self, ctx: &OrderContext) -> Result<StepOutput, StepError> {
        // Each call converts the order anew: a script may change its argument, and a copy of a
        // converted map (measured) costs about as much as converting again.
        let arg = rhai::serde::to_dynamic(ctx)
            .map_err(|e| StepError::Failed(format!("cannot pass the order to the script: {e}")))?;
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let budget =
            CallBudget { deadline: Instant::now() + self.deadline, print_left: self.max_print_bytes, dropped: 0 };
        CALL.with(|c| c.set(Some(budget)));
        let result = self.engine.call_fn_with_options(options, &mut Scope::new(), &self.ast, "evaluate", (arg,));
        let spent = CALL.with(|c| c.take());
        if let Some(dropped) = spent.map(|b| b.dropped).filter(|d| *d > 0) {
            tracing::warn!(
                target: "greenlight::script",
                script = %self.name,
                dropped,
                "the script printed more than {} bytes in one call; the rest was dropped",
                self.max_print_bytes
            );
        }
        let result: Dynamic = result.map_err(|e| classify(&e))?;
        if !result.is_map() {
            return Err(StepError::BadOutput(format!(
                "`evaluate` must return a map, it returned {}",
                result.type_name()
            )));
        }
        rhai::serde::from_dynamic::<StepOutput>(&result).map_err(|e| StepError::BadOutput(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
