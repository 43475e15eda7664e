//! What a component must import and export to be accepted: only the plugin-API interfaces its
//! world allows (and its manifest declares), WASI 0.2 as the Rust standard library needs it, and
//! the world's interface at a plugin-API version this host speaks, agreeing with its manifest.

use super::{WasmError, WasmRuntime};
use crate::domain::extension::ApiVersion;
use crate::runtime::manifest::{Manifest, World};
use wasmtime::component::Component;

impl WasmRuntime {
    /// Checks a component's imports against what its world and manifest allow; says whether it
    /// imports any WASI (a step that does not may have its instances reused).
    pub(super) fn check_imports(&self, component: &Component, manifest: &Manifest) -> Result<bool, WasmError> {
        let ty = component.component_type();
        let mut wasi_imported = false;
        for (name, _) in ty.imports(&self.engine) {
            let (iface, version) = name
                .rsplit_once('@')
                .ok_or_else(|| WasmError::Imports(format!("it imports `{name}` without a version")))?;
            if let Some(wasi) = iface.strip_prefix("wasi:") {
                wasi_imported = true;
                if !version.starts_with("0.2.") {
                    return Err(WasmError::Imports(format!("it imports `{name}`; this host provides WASI 0.2 only")));
                }
                if wasi.starts_with("sockets/") || wasi.starts_with("http/") {
                    return Err(WasmError::Imports(format!(
                        "it imports `{name}`: plugins get no sockets; use greenlight:plugin/http through the host"
                    )));
                }
                if manifest.world == World::ApprovalStep && (wasi == "random/random" || wasi == "random/insecure") {
                    return Err(WasmError::Imports(format!(
                        "it imports `{name}`: approval steps must be deterministic"
                    )));
                }
                continue;
            }
            let Some(gl) = iface.strip_prefix("greenlight:plugin/") else {
                return Err(WasmError::Imports(format!("it imports `{name}`, which this host does not provide")));
            };
            if !ApiVersion::parse(version).is_some_and(|v| v.runs_on(ApiVersion::HOST)) {
                let host = ApiVersion::HOST;
                return Err(WasmError::Imports(format!(
                    "it imports `{name}`, but this host provides greenlight:plugin@{host}: rebuild it against greenlight-plugin-api {}.{} or upgrade the host",
                    host.major, host.minor
                )));
            }
            let allowed = match (gl, manifest.world) {
                ("types" | "host", _) => true,
                ("records", World::ApprovalStep) => true,
                ("http", World::Connector | World::Notifier) => {
                    if manifest.capabilities.http.is_empty() {
                        return Err(WasmError::Imports(format!(
                            "it imports `{name}` but its manifest declares no [capabilities] http origins"
                        )));
                    }
                    true
                }
                ("mail", World::Notifier) => {
                    if !manifest.capabilities.mail {
                        return Err(WasmError::Imports(format!(
                            "it imports `{name}` but its manifest does not declare mail = true"
                        )));
                    }
                    true
                }
                _ => false,
            };
            if !allowed {
                return Err(WasmError::Imports(format!(
                    "it imports `{name}`, which `{}` plugins may not use",
                    manifest.world.as_str()
                )));
            }
        }
        Ok(wasi_imported)
    }

    /// The plugin-API version of the interface a component exports for its world, e.g.
    /// `(1, 0, "1.0.0")`, which must agree with its manifest's `api`.
    pub(super) fn exported_api(&self, component: &Component, manifest: &Manifest) -> Result<(u64, String), WasmError> {
        let iface = match manifest.world {
            World::ApprovalStep => "step",
            World::Connector => "connector-api",
            World::Notifier => "notifier-api",
        };
        let prefix = format!("greenlight:plugin/{iface}@");
        let missing = || WasmError::Exports {
            world: manifest.world.as_str(),
            reason: format!("it exports no `greenlight:plugin/{iface}` interface"),
        };
        let ty = component.component_type();
        let version = ty
            .exports(&self.engine)
            .find_map(|(name, _)| name.strip_prefix(&prefix).map(str::to_string))
            .ok_or_else(missing)?;
        let host = ApiVersion::HOST;
        let exported = match ApiVersion::parse(&version) {
            Some(v) if v.runs_on(host) => v,
            _ => {
                return Err(WasmError::Imports(format!(
                    "it implements greenlight:plugin@{version}, but this host speaks {host}: rebuild it against greenlight-plugin-api {}.{} or upgrade the host",
                    host.major, host.minor
                )));
            }
        };
        let minor = exported.minor;
        let declared = manifest.api_version();
        if declared.map(|d| (d.major, d.minor)) != Some((exported.major, exported.minor)) {
            return Err(WasmError::Imports(format!(
                "its manifest says api = \"{}\" but the component implements greenlight:plugin@{version}: set api = \"{version}\" in manifest.toml",
                manifest.api
            )));
        }
        Ok((minor, version))
    }
}
