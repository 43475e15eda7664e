//! The Rhai runtime. One engine for the whole host, built once with limits on operations, call
//! depth, expression depth, string/array/map sizes, variables and functions; `eval` and modules
//! are disabled, and there is no clock, so scripts stay deterministic. A script defines
//! `fn evaluate(ctx)` and returns a map in the step-output shape. Each distinct source is
//! compiled once and cached by its SHA-256.

use crate::domain::step::{OrderContext, StepOutput};
use crate::engine::{Step, StepError, StepKind};
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Scope};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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
    cache: RwLock<HashMap<String, Arc<AST>>>,
}

/// SHA-256 of a script's source, hex: its identity in caches and evaluation records.
pub fn source_hash(source: &str) -> String {
    hex::encode(Sha256::digest(source.as_bytes()))
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
        engine.on_print(|s| tracing::info!(target: "greenlight::script", "{s}"));
        engine.on_debug(
            |s, src, pos| tracing::debug!(target: "greenlight::script", source = src, position = %pos, "{s}"),
        );
        RhaiRuntime { engine: Arc::new(engine), limits, cache: RwLock::new(HashMap::new()) }
    }

    /// Compiles a script (or returns the cached compilation of the same source) and checks it
    /// defines `fn evaluate(ctx)`.
    pub fn compile(&self, source: &str) -> Result<(String, Arc<AST>), ScriptError> {
        let hash = source_hash(source);
        if let Some(ast) = self.cache.read().ok().and_then(|c| c.get(&hash).cloned()) {
            return Ok((hash, ast));
        }
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
        let ast = Arc::new(ast);
        if let Ok(mut c) = self.cache.write() {
            if c.len() > 4096 {
                c.clear();
            }
            c.insert(hash.clone(), ast.clone());
        }
        Ok((hash, ast))
    }

    /// A step running this script.
    pub fn step(&self, name: &str, source: &str) -> Result<RhaiStep, ScriptError> {
        let (hash, ast) = self.compile(source)?;
        Ok(RhaiStep { name: name.to_string(), hash, ast, engine: self.engine.clone() })
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
}

fn classify(e: &EvalAltResult) -> StepError {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => classify(inner),
        EvalAltResult::ErrorTooManyOperations(_) => StepError::OutOfFuel("Rhai operation limit".into()),
        EvalAltResult::ErrorStackOverflow(_) => StepError::MemoryLimit("call depth limit".into()),
        EvalAltResult::ErrorDataTooLarge(what, _) => StepError::MemoryLimit(what.clone()),
        EvalAltResult::ErrorTooManyVariables(_) => StepError::MemoryLimit("variable limit".into()),
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
        let arg = rhai::serde::to_dynamic(ctx)
            .map_err(|e| StepError::Failed(format!("cannot pass the order to the script: {e}")))?;
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let result: Dynamic = self
            .engine
            .call_fn_with_options(options, &mut Scope::new(), &self.ast, "evaluate", (arg,))
            .map_err(|e| classify(&e))?;
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
