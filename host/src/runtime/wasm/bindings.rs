//! Host-side bindings generated from `plugin-api/wit`, one module per world.
//!
//! - The current package, `greenlight:plugin@1.1.0`: the `approval-step` world owns the shared
//!   `types` and `host` interfaces; the other worlds reuse them, so one set of types and one
//!   `host` implementation serve all three.
//! - The released `greenlight:plugin@1.0.0`, frozen under `plugin-api/wit/deps/`: [`v1_0`] has
//!   only its exports, typed with the 1.1 Rust types (1.1 only added to 1.0, so every 1.0 shape
//!   is a 1.1 shape). Its imports are served by the 1.1 implementations: wasmtime's linker
//!   resolves an import of `…@1.0.0` to the semver-compatible `…@1.1.0`.

#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod step {
    wasmtime::component::bindgen!({
        path: "../plugin-api/wit",
        world: "greenlight:plugin/approval-step@1.1.0",
        imports: { default: trappable },
    });
}

#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod connector {
    wasmtime::component::bindgen!({
        path: "../plugin-api/wit",
        world: "greenlight:plugin/connector@1.1.0",
        imports: { default: trappable },
        with: {
            "greenlight:plugin/types@1.1.0": super::step::greenlight::plugin1_1_0::types,
            "greenlight:plugin/host@1.1.0": super::step::greenlight::plugin1_1_0::host,
        },
    });
}

#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod notifier {
    wasmtime::component::bindgen!({
        path: "../plugin-api/wit",
        world: "greenlight:plugin/notifier@1.1.0",
        imports: { default: trappable },
        with: {
            "greenlight:plugin/types@1.1.0": super::step::greenlight::plugin1_1_0::types,
            "greenlight:plugin/host@1.1.0": super::step::greenlight::plugin1_1_0::host,
            "greenlight:plugin/http@1.1.0": super::connector::greenlight::plugin1_1_0::http,
        },
    });
}

/// The exports of plugin API 1.0.0 components, typed with the 1.1 types.
pub mod v1_0 {
    #[allow(missing_docs, unsafe_code, clippy::all)]
    pub mod step {
        wasmtime::component::bindgen!({
            path: "../plugin-api/wit/deps/greenlight-plugin-1.0.0",
            world: "approval-step",
            with: {
                "greenlight:plugin/types": crate::runtime::wasm::bindings::types,
                "greenlight:plugin/host": crate::runtime::wasm::bindings::host,
            },
        });
    }

    #[allow(missing_docs, unsafe_code, clippy::all)]
    pub mod connector {
        wasmtime::component::bindgen!({
            path: "../plugin-api/wit/deps/greenlight-plugin-1.0.0",
            world: "connector",
            with: {
                "greenlight:plugin/types": crate::runtime::wasm::bindings::types,
                "greenlight:plugin/host": crate::runtime::wasm::bindings::host,
                "greenlight:plugin/http": crate::runtime::wasm::bindings::http,
            },
        });
    }

    #[allow(missing_docs, unsafe_code, clippy::all)]
    pub mod notifier {
        wasmtime::component::bindgen!({
            path: "../plugin-api/wit/deps/greenlight-plugin-1.0.0",
            world: "notifier",
            with: {
                "greenlight:plugin/types": crate::runtime::wasm::bindings::types,
                "greenlight:plugin/host": crate::runtime::wasm::bindings::host,
                "greenlight:plugin/http": crate::runtime::wasm::bindings::http,
                "greenlight:plugin/mail": crate::runtime::wasm::bindings::mail,
            },
        });
    }
}

pub use connector::greenlight::plugin1_1_0::http;
pub use notifier::greenlight::plugin1_1_0::mail;
pub use step::greenlight::plugin1_1_0::{host, records, types};
