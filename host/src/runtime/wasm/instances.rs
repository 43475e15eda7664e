//! Instances an operator lets approval steps reuse: `--reuse-step-instances`, off by default.
//!
//! A fresh instance per call is the sandbox's promise, and it costs: instantiating takes about
//! three quarters of a step call (`cargo xtask bench`, "WASM step call vs a reused instance").
//! With reuse on, a call of a step may run in an instance that an earlier call of the **same
//! tenant, extension, step version and configuration** left idle: that tenant's earlier orders may
//! have left memory and globals behind (a configuration a step parsed once, say), nothing crosses
//! tenants, extensions, versions or configurations. A deterministic step returns the same
//! either way; a step that keeps state between calls does not, and replaying an order's evaluation
//! (always in a fresh instance) shows it as a difference: after turning reuse on, an operator
//! replays orders decided since, and turns it off again if a step differs.
//!
//! Only components that import no WASI qualify (every approval step `cargo xtask plugins` builds):
//! a WASI context would carry open streams and buffered output from call to call. An instance goes
//! back to the idle set only after a call that returned a valid output: a trap, a limit, a denied
//! capability or an output the host cannot read drops it. Every call still runs under its own
//! fuel and deadline; its memory limit counts what earlier calls left allocated. Idle instances
//! hold slots of the pooling allocator, which has a quarter more of them when reuse is on
//! ([`idle_capacity`]), so fresh calls keep every slot they had; when the set is full, a new
//! idle instance takes the place of another.

use super::bindings::step::ApprovalStep;
use super::{PluginState, WasmLimits, WasmRuntime};
use std::collections::HashMap;
use std::sync::Mutex;
use wasmtime::Store;

/// An idle instance with the store it lives in.
pub(super) type Idle = (Store<PluginState>, ApprovalStep);

/// What an idle instance may be reused for: exactly one tenant's calls of one extension, at one
/// version (code hash) and one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub tenant: String,
    pub extension: String,
    pub code_hash: String,
    pub config_json: String,
}

/// How many instances may be idle at once: a quarter of those that may run at once, which the
/// pooling allocator adds to its slots when reuse is on.
pub(super) fn idle_capacity(limits: &WasmLimits) -> u32 {
    if limits.reuse_step_instances { (limits.concurrent_instances / 4).max(1) } else { 0 }
}

/// The idle instances of one runtime.
pub(super) struct IdleInstances {
    by_key: Mutex<HashMap<Key, Vec<Idle>>>,
    /// At most this many idle instances in all.
    capacity: usize,
    /// At most this many per key: as many as calls can run at once.
    per_key: usize,
}

impl IdleInstances {
    /// Room for [`idle_capacity`] instances.
    pub(super) fn per_runtime(limits: &WasmLimits) -> IdleInstances {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        IdleInstances {
            by_key: Mutex::new(HashMap::new()),
            capacity: idle_capacity(limits) as usize,
            per_key: cores.max(1),
        }
    }

    /// An idle instance for this key, if a call left one.
    pub(super) fn take(&self, key: &Key) -> Option<Idle> {
        let mut map = self.by_key.lock().ok()?;
        let idle = map.get_mut(key)?;
        let found = idle.pop();
        if idle.is_empty() {
            map.remove(key);
        }
        found
    }

    /// Keeps an instance whose call went well for the next call of the same key. When the set
    /// is full, an instance of another key makes room (the oldest keys are not tracked: any
    /// other will do, since each is one call away from being made afresh).
    pub(super) fn give(&self, key: Key, instance: Idle) {
        // What is not kept is dropped here, after the lock: dropping a store returns its slot.
        let _dropped = self.keep(key, instance);
    }

    /// [`IdleInstances::give`] under the lock; returns the instance that was not kept, if any.
    fn keep(&self, key: Key, instance: Idle) -> Option<Idle> {
        let Ok(mut map) = self.by_key.lock() else { return Some(instance) };
        if map.get(&key).is_some_and(|idle| idle.len() >= self.per_key) {
            return Some(instance);
        }
        let mut evicted = None;
        if map.values().map(Vec::len).sum::<usize>() >= self.capacity {
            let Some(other) = map.keys().find(|k| **k != key).cloned() else { return Some(instance) };
            if let Some(idle) = map.get_mut(&other) {
                evicted = idle.pop();
                if idle.is_empty() {
                    map.remove(&other);
                }
            }
        }
        map.entry(key).or_default().push(instance);
        evicted
    }

    fn len(&self) -> usize {
        self.by_key.lock().map(|m| m.values().map(Vec::len).sum()).unwrap_or(0)
    }
}

impl WasmRuntime {
    /// How many step instances are idle for reuse (0 unless the operator allows reuse).
    pub fn idle_instances(&self) -> usize {
        self.idle.as_ref().map_or(0, IdleInstances::len)
    }
}
