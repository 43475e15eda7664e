//! Test fixture: counts its calls in a global. With a fresh instance per call the count is
//! always 1; a host that reused instances would leak state between orders and tenants.
use greenlight_plugin_api::*;
use std::sync::atomic::{AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);

/// The step.
pub struct Counter;
impl ApprovalStep for Counter {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let n = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        let label = ctx.config_str("label").unwrap_or_default();
        Ok(StepOutput::proceed().flag(&format!("calls-{n}"), Severity::Info, format!("{label} call {n}")))
    }
}
export_step!(Counter);
