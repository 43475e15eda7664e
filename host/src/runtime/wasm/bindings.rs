//! Host-side bindings generated from `plugin-api/wit` (package `greenlight:plugin@1.0.0`), one
//! module per world. The `approval-step` world owns the shared `types` and `host` interfaces; the
//! other worlds reuse them, so one set of types and one `host` implementation serve all three.

#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod step {
    wasmtime::component::bindgen!({
        path: "../plugin-api/wit",
        world: "approval-step",
        imports: { default: trappable },
    });
}

#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod connector {
    wasmtime::component::bindgen!({
        path: "../plugin-api/wit",
        world: "connector",
        imports: { default: trappable },
        with: {
            "greenlight:plugin/types": super::step::greenlight::plugin::types,
            "greenlight:plugin/host": super::step::greenlight::plugin::host,
        },
    });
}

#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod notifier {
    wasmtime::component::bindgen!({
        path: "../plugin-api/wit",
        world: "notifier",
        imports: { default: trappable },
        with: {
            "greenlight:plugin/types": super::step::greenlight::plugin::types,
            "greenlight:plugin/host": super::step::greenlight::plugin::host,
            "greenlight:plugin/http": super::connector::greenlight::plugin::http,
        },
    });
}

pub use connector::greenlight::plugin::http;
pub use notifier::greenlight::plugin::mail;
pub use step::greenlight::plugin::{host, types};
