//! Test fixture: counts its calls in a global. With a fresh instance per call the count is
//! always 1; in an instance the host reuses, it counts on (instances are reused only within one
//! tenant and version, when the operator allows it). `panic_on_call` makes that call panic, so
//! a test can see that an instance whose call failed is not reused.
use greenlight_plugin_api::*;
use std::sync::atomic::{AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);

/// The step.
pub struct Counter;
impl ApprovalStep for Counter {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let n = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        if ctx.config_i64("panic_on_call") == Some(n as i64) {
            panic!("told to panic on call {n}");
        }
        let label = ctx.config_str("label").unwrap_or_default();
        Ok(StepOutput::proceed().flag(&format!("calls-{n}"), Severity::Info, format!("{label} call {n}")))
    }
}
export_step!(Counter);
