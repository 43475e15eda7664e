//! # Greenlight plugin SDK (plugin API 1.1)
//!
//! Write an approval step, a connector or a notifier in Rust, build it for `wasm32-wasip2`, and
//! the Greenlight host runs it sandboxed. The contract is the WIT package
//! `greenlight:plugin@1.1.0` in `wit/` (1.0.0, the released version before it, is frozen in
//! `wit/deps/`; hosts speaking 1.1 run plugins built for either); this crate keeps the generated
//! bindings private and gives you:
//!
//! - the data types ([`OrderContext`], [`StepOutput`], [`Stage`], ...), with small builders;
//! - one trait per world — [`ApprovalStep`], [`Connector`], [`Notifier`] — and its export macro
//!   ([`export_step!`], `export_connector!`, `export_notifier!`);
//! - [`host`]: logging and configuration; `records` (the connector's customer, invoices and
//!   budgets) for approval steps; `http` and `mail` for the worlds that may use them;
//! - [`template`]: `{name}` placeholders and event filters for notification channels;
//! - helpers so the plugin's logic is unit-tested natively with `cargo test` ([`testing`]).
//!
//! Pick the world with a cargo feature: `step` (default), `connector` or `notifier`.
//!
//! ```
//! use greenlight_plugin_api::*;
//!
//! struct LargeOrder;
//!
//! impl ApprovalStep for LargeOrder {
//!     fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
//!         let threshold = ctx.config_i64("threshold_minor").unwrap_or(1_000_000);
//!         if ctx.subtotal_minor < threshold {
//!             return Ok(StepOutput::proceed());
//!         }
//!         Ok(StepOutput::proceed().stage(Stage::new("large-order", Approvers::Role("executive".into()), "large order")))
//!     }
//! }
//!
//! export_step!(LargeOrder);
//! ```

#[cfg(any(
    all(feature = "step", feature = "connector"),
    all(feature = "step", feature = "notifier"),
    all(feature = "connector", feature = "notifier")
))]
compile_error!(
    "enable exactly one world feature: `step` (default), `connector` or `notifier`; use default-features = false for the others"
);

#[cfg(not(any(feature = "step", feature = "connector", feature = "notifier")))]
compile_error!("enable one world feature: `step` (default), `connector` or `notifier`");

#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod __bindings {
    #[cfg(feature = "step")]
    wit_bindgen::generate!({
        path: "wit",
        world: "approval-step",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "greenlight_plugin_api::__bindings",
    });
    #[cfg(feature = "connector")]
    wit_bindgen::generate!({
        path: "wit",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "greenlight_plugin_api::__bindings",
    });
    #[cfg(feature = "notifier")]
    wit_bindgen::generate!({
        path: "wit",
        world: "notifier",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "greenlight_plugin_api::__bindings",
    });
}

mod builders;
pub mod host;
#[cfg(any(feature = "connector", feature = "notifier"))]
pub mod http;
#[cfg(feature = "notifier")]
pub mod mail;
#[cfg(feature = "step")]
pub mod records;
pub mod template;
pub mod testing;

pub use __bindings::greenlight::plugin1_1_0::types::*;
pub use serde_json;

/// The plugin-API version this SDK implements.
pub const API_VERSION: &str = "1.1.0";

/// An approval step: decides what an order needs. Must be deterministic.
#[cfg(feature = "step")]
pub trait ApprovalStep {
    /// Evaluates one order.
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError>;
}

/// A connector to a system of record. Override what your ERP supports; the rest answers
/// "not supported".
#[cfg(feature = "connector")]
pub trait Connector {
    /// The customer's profile.
    fn customer(customer_id: String) -> Result<CustomerProfile, ConnectorError> {
        Err(ConnectorError::Failed(format!("this connector cannot look up customer {customer_id}")))
    }
    /// The customer's unpaid invoices.
    fn open_invoices(customer_id: String) -> Result<Vec<OpenInvoice>, ConnectorError> {
        Err(ConnectorError::Failed(format!("this connector cannot list invoices of {customer_id}")))
    }
    /// Budgets relevant to an order.
    fn budgets(ctx: OrderContext) -> Result<Vec<Budget>, ConnectorError> {
        let _ = ctx;
        Ok(Vec::new())
    }
    /// Sends an approved order to the ERP.
    fn export_order(ctx: OrderContext) -> Result<ExportResult, ConnectorError> {
        Err(ConnectorError::Failed(format!("this connector cannot export order {}", ctx.order.id)))
    }
    /// Commits an approved customer order against the customer's credit line and returns the
    /// line after it; `Ok(None)` (the default) when the ERP keeps no credit line this way. Must
    /// be idempotent on `update.idempotency_key`: the host retries. Since API 1.1.
    fn update_credit(update: CreditUpdate) -> Result<Option<CreditLine>, ConnectorError> {
        let _ = update;
        Ok(None)
    }
}

/// A notification channel.
#[cfg(feature = "notifier")]
pub trait Notifier {
    /// Delivers one notification. Return `NotifyError::Temporary` to be retried.
    fn deliver(notification: Notification) -> Result<(), NotifyError>;
}

/// Reports panics through the host log before the instance aborts, so the host can say why.
#[doc(hidden)]
pub fn __install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| host::error(&info.to_string())));
    });
}

/// Exports a type implementing [`ApprovalStep`] as this component's `step` interface.
#[cfg(feature = "step")]
#[macro_export]
macro_rules! export_step {
    ($t:ty) => {
        #[doc(hidden)]
        pub struct __GreenlightExport;
        impl $crate::__bindings::exports::greenlight::plugin1_1_0::step::Guest for __GreenlightExport {
            fn evaluate(ctx: $crate::OrderContext) -> ::core::result::Result<$crate::StepOutput, $crate::StepError> {
                $crate::__install_panic_hook();
                <$t as $crate::ApprovalStep>::evaluate(ctx)
            }
        }
        // Component exports exist only in WebAssembly; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::__export_world!(__GreenlightExport with_types_in $crate::__bindings);
    };
}

/// Exports a type implementing [`Connector`] as this component's `connector-api` interface.
#[cfg(feature = "connector")]
#[macro_export]
macro_rules! export_connector {
    ($t:ty) => {
        #[doc(hidden)]
        pub struct __GreenlightExport;
        impl $crate::__bindings::exports::greenlight::plugin1_1_0::connector_api::Guest for __GreenlightExport {
            fn customer(id: String) -> ::core::result::Result<$crate::CustomerProfile, $crate::ConnectorError> {
                $crate::__install_panic_hook();
                <$t as $crate::Connector>::customer(id)
            }
            fn open_invoices(id: String) -> ::core::result::Result<Vec<$crate::OpenInvoice>, $crate::ConnectorError> {
                $crate::__install_panic_hook();
                <$t as $crate::Connector>::open_invoices(id)
            }
            fn budgets(ctx: $crate::OrderContext) -> ::core::result::Result<Vec<$crate::Budget>, $crate::ConnectorError> {
                $crate::__install_panic_hook();
                <$t as $crate::Connector>::budgets(ctx)
            }
            fn export_order(ctx: $crate::OrderContext) -> ::core::result::Result<$crate::ExportResult, $crate::ConnectorError> {
                $crate::__install_panic_hook();
                <$t as $crate::Connector>::export_order(ctx)
            }
            fn update_credit(
                update: $crate::CreditUpdate,
            ) -> ::core::result::Result<::core::option::Option<$crate::CreditLine>, $crate::ConnectorError> {
                $crate::__install_panic_hook();
                <$t as $crate::Connector>::update_credit(update)
            }
        }
        // Component exports exist only in WebAssembly; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::__export_world!(__GreenlightExport with_types_in $crate::__bindings);
    };
}

/// Exports a type implementing [`Notifier`] as this component's `notifier-api` interface.
#[cfg(feature = "notifier")]
#[macro_export]
macro_rules! export_notifier {
    ($t:ty) => {
        #[doc(hidden)]
        pub struct __GreenlightExport;
        impl $crate::__bindings::exports::greenlight::plugin1_1_0::notifier_api::Guest for __GreenlightExport {
            fn deliver(n: $crate::Notification) -> ::core::result::Result<(), $crate::NotifyError> {
                $crate::__install_panic_hook();
                <$t as $crate::Notifier>::deliver(n)
            }
        }
        // Component exports exist only in WebAssembly; native builds (unit tests) skip them.
        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::__export_world!(__GreenlightExport with_types_in $crate::__bindings);
    };
}
