//! The background workers `serve` runs beside the API. Each round is a committed change, so a
//! crash at any point loses nothing and the next round picks up where this one stopped.
//!
//! - [`dispatcher`]: the outbox dispatcher: every event fanned out to the tenant's channels as
//!   deliveries, each sent until accepted, retried with backoff, or dead (notifications, release
//!   to the ERP, credit updates).
//! - [`escalation`]: the sweep that escalates overdue stages (R6).

pub mod dispatcher;
pub mod escalation;
