//! Test fixture: never returns. The host must stop it (deadline or fuel) and hold the order.
use greenlight_plugin_api::*;
/// The step.
pub struct Spin;
impl ApprovalStep for Spin {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let mut x = ctx.subtotal_minor;
        loop {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            if x == 42 && ctx.order.id == "never" {
                return Ok(StepOutput::proceed());
            }
        }
    }
}
export_step!(Spin);
