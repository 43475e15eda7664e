//! Logging into the host's log and reading this plugin's configuration. Outside WebAssembly
//! (native unit tests) logging goes to stderr and the configuration is empty.

#[cfg(target_arch = "wasm32")]
use crate::__bindings::greenlight::plugin1_1_0::host as wit;

#[cfg(target_arch = "wasm32")]
fn log(level: wit::Level, message: &str) {
    wit::log(level, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    #[cfg(target_arch = "wasm32")]
    log(wit::Level::Info, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[info] {message}");
}

/// Logs at warn level.
pub fn warn(message: &str) {
    #[cfg(target_arch = "wasm32")]
    log(wit::Level::Warn, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[warn] {message}");
}

/// Logs at error level; the host keeps the last error line as the reason when a call fails.
pub fn error(message: &str) {
    #[cfg(target_arch = "wasm32")]
    log(wit::Level::Error, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[error] {message}");
}

/// This plugin's configuration for the calling tenant (defaults from the manifest, overridden by
/// the tenant), as a JSON value.
pub fn config() -> serde_json::Value {
    #[cfg(target_arch = "wasm32")]
    let text = wit::config();
    #[cfg(not(target_arch = "wasm32"))]
    let text = String::from("{}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Object(Default::default()))
}
