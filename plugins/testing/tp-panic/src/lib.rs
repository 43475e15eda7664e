//! Test fixture: panics. The host must report the panic message and hold the order.
use greenlight_plugin_api::*;
/// The step.
pub struct Boom;
impl ApprovalStep for Boom {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let lines = ctx.order.lines.len();
        panic!("customer record missing for order with {lines} line(s)");
    }
}
export_step!(Boom);
