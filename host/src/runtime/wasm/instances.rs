//! Instances an operator lets approval steps reuse: `--reuse-step-instances`, off by default.
//!
//! A fresh instance per call is the sandbox's promise, and it costs: instantiating takes about
//! three quarters of a step call (`cargo xtask bench`, "WASM step call vs a reused instance").
//! With reuse on, a call of a step may run in an instance that an earlier call of the **same
//! tenant and the same step version** left idle: that tenant's earlier orders may have left memory
//! and globals behind, nothing crosses tenants or versions. A deterministic step returns the same
//! either way; a step that keeps state between calls does not, and replaying an order's evaluation
//! (always in a fresh instance) shows it as a difference. So an operator turns reuse on after a
//! replay of real orders shows none.
//!
//! Only components that import no WASI qualify (every approval step `cargo xtask plugins` builds):
//! a WASI context would carry open streams and buffered output from call to call. An instance goes
//! back to the idle set only after a call that returned a valid output: a trap, a limit, a denied
//! capability or a bad output drops it. Every call still runs under its own fuel, deadline and
//! memory limit. Idle instances hold slots of the pooling allocator, so there are at most
//! [`IdleInstances::per_runtime`] of them, a quarter of the instances that may run at once.

use super::PluginState;
use super::bindings::step::ApprovalStep;
use std::collections::HashMap;
use std::sync::Mutex;
use wasmtime::Store;

/// An idle instance with the store it lives in.
pub(super) type Idle = (Store<PluginState>, ApprovalStep);

/// The idle instances of one runtime, by step version (code hash) and tenant.
pub(super) struct IdleInstances {
    by_key: Mutex<HashMap<(String, String), Vec<Idle>>>,
    /// At most this many idle instances in all.
    capacity: usize,
    /// At most this many per step version and tenant: as many as calls can run at once.
    per_key: usize,
}

impl IdleInstances {
    /// Room for a quarter of the instances that may run at once, so fresh calls keep the rest.
    pub(super) fn per_runtime(concurrent_instances: u32) -> IdleInstances {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        IdleInstances {
            by_key: Mutex::new(HashMap::new()),
            capacity: (concurrent_instances as usize / 4).max(1),
            per_key: cores.max(1),
        }
    }

    /// An idle instance of this step version that this tenant's calls left, if any.
    pub(super) fn take(&self, code_hash: &str, tenant: &str) -> Option<Idle> {
        let mut map = self.by_key.lock().ok()?;
        let key = (code_hash.to_string(), tenant.to_string());
        let idle = map.get_mut(&key)?;
        let found = idle.pop();
        if idle.is_empty() {
            map.remove(&key);
        }
        found
    }

    /// Keeps an instance whose call went well for the next call of the same tenant and version;
    /// drops it when the set is full.
    pub(super) fn give(&self, code_hash: &str, tenant: &str, instance: Idle) {
        let Ok(mut map) = self.by_key.lock() else { return };
        let total: usize = map.values().map(Vec::len).sum();
        if total >= self.capacity {
            return;
        }
        let idle = map.entry((code_hash.to_string(), tenant.to_string())).or_default();
        if idle.len() < self.per_key {
            idle.push(instance);
        }
    }
}
