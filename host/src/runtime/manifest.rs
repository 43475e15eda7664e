//! The plugin manifest: the TOML file shipped beside every plugin. It names the plugin, the world
//! it implements, the plugin-API version it was built for, the capabilities it needs, and its
//! configuration keys with defaults. Unknown fields are refused, so a typo never silently drops
//! a capability or a default.
//!
//! ```toml
//! name = "spend-limit"
//! version = "1.0.0"
//! world = "approval-step"
//! api = "1.0.0"
//! component = "spend_limit.wasm"
//! description = "User-specific approval above the spend limit or budget"
//!
//! [capabilities]
//! http = ["https://erp.example.com:443"]
//! mail = false
//!
//! [config.level]
//! type = "integer"
//! default = 2
//! description = "Level of the user-approval stage"
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::domain::extension::ApiVersion;

/// What went wrong with a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the manifest {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The TOML is malformed or has unknown fields.
    #[error("the manifest {path} is invalid: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A value breaks a rule.
    #[error("the manifest field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why and what to do.
        reason: String,
    },
    /// Built for a plugin API this host does not speak.
    #[error(
        "the plugin was built for plugin API {found}, but this host speaks {}: rebuild it against greenlight-plugin-api {}.{} or upgrade the host",
        ApiVersion::HOST, ApiVersion::HOST.major, ApiVersion::HOST.minor
    )]
    Api {
        /// The manifest's `api`.
        found: String,
    },
}

pub use crate::domain::extension::World;

/// How the plugin is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A sandboxed WebAssembly component (the default).
    #[default]
    Wasm,
    /// A native shared library: trusted vendors only, off unless the operator allows it.
    Native,
}

/// Capabilities the plugin asks for. It gets each only if the tenant also grants it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Origins (`scheme://host:port`) the plugin may call over HTTP, or [`ANY_ORIGIN`] for a
    /// channel or connector whose endpoint each tenant chooses (a webhook URL, an SMS provider,
    /// the tenant's ERP): then exactly the origins the tenant grants.
    #[serde(default)]
    pub http: Vec<String>,
    /// Whether the plugin may hand e-mail to the host's relay.
    #[serde(default)]
    pub mail: bool,
}

/// The `capabilities.http` entry for "whichever origins the tenant grants".
pub const ANY_ORIGIN: &str = "*";

impl Capabilities {
    /// Whether the manifest lets the tenant grant this origin.
    pub fn declares_origin(&self, origin: &str) -> bool {
        parse_origin(origin).is_some() && self.http.iter().any(|o| o == origin || o == ANY_ORIGIN)
    }
}

/// The type of a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    /// An integer (amounts in minor units).
    Integer,
    /// Text.
    String,
    /// true or false.
    Boolean,
    /// A list.
    Array,
    /// A JSON object.
    Object,
}

/// One configuration key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigKey {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ConfigType,
    /// The value when the tenant sets none.
    #[serde(default)]
    pub default: Option<toml::Value>,
    /// What it does, for administrators.
    pub description: String,
}

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Extension name, unique in the host: 1-64 lower-case letters, digits, `-` or `_`.
    pub name: String,
    /// The plugin's own semantic version.
    pub version: String,
    /// The world it implements.
    pub world: World,
    /// The plugin-API version it was built for.
    pub api: String,
    /// WASM or native.
    #[serde(default)]
    pub kind: Kind,
    /// The component (`.wasm`) or library file, relative to the manifest.
    #[serde(default)]
    pub component: Option<String>,
    /// The native library file, relative to the manifest (native plugins).
    #[serde(default)]
    pub library: Option<String>,
    /// One line for administrators.
    #[serde(default)]
    pub description: String,
    /// What it needs.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Configuration keys.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigKey>,
}

/// Parses an origin `scheme://host:port` (port required, no path).
pub fn parse_origin(s: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = s.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.contains('/') {
        return None;
    }
    let (host, port) = rest.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((scheme.to_string(), host.to_ascii_lowercase(), port))
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

impl Manifest {
    /// Parses and validates manifest text.
    pub fn parse(text: &str, path: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Parse { path: path.to_string(), reason: e.to_string() })?;
        m.validate()?;
        Ok(m)
    }

    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ManifestError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// The plugin-API version the manifest declares, if it is well-formed.
    pub fn api_version(&self) -> Option<ApiVersion> {
        ApiVersion::parse(&self.api)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |field: &str, reason: &str| ManifestError::Invalid { field: field.into(), reason: reason.into() };
        let name_ok = (1..=64).contains(&self.name.len())
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !name_ok {
            return Err(invalid("name", "use 1-64 lower-case letters, digits, '-' or '_', starting with a letter"));
        }
        // The plugin's own version has the same MAJOR.MINOR.PATCH form.
        if ApiVersion::parse(&self.version).is_none() {
            return Err(invalid("version", "use MAJOR.MINOR.PATCH, e.g. 1.0.0"));
        }
        let api = self.api_version().ok_or_else(|| invalid("api", "use MAJOR.MINOR.PATCH, e.g. 1.0.0"))?;
        // 1.x only grows: a plugin built for 1.0 runs on any 1.y host with y >= 0; one built for
        // a newer minor needs what this host lacks.
        if !api.runs_on(ApiVersion::HOST) {
            return Err(ManifestError::Api { found: self.api.clone() });
        }
        match self.kind {
            Kind::Wasm if self.component.is_none() => {
                return Err(invalid(
                    "component",
                    "a WASM plugin names its component file, e.g. component = \"my_plugin.wasm\"",
                ));
            }
            Kind::Native if self.library.is_none() => {
                return Err(invalid(
                    "library",
                    "a native plugin names its library file, e.g. library = \"libmy_plugin.so\"",
                ));
            }
            _ => {}
        }
        if self.world == World::ApprovalStep && (!self.capabilities.http.is_empty() || self.capabilities.mail) {
            return Err(invalid(
                "capabilities",
                "an approval step is pure: it may not use http or mail (use a connector to fetch data)",
            ));
        }
        if self.world == World::Connector && self.capabilities.mail {
            return Err(invalid("capabilities.mail", "only notifiers may send mail"));
        }
        for o in &self.capabilities.http {
            if o != ANY_ORIGIN && parse_origin(o).is_none() {
                return Err(invalid(
                    "capabilities.http",
                    &format!(
                        "'{o}' is not an origin: use scheme://host:port, e.g. https://erp.example.com:443, or \"*\" for origins each tenant grants"
                    ),
                ));
            }
        }
        for (key, c) in &self.config {
            if let Some(d) = &c.default {
                let ok = matches!(
                    (c.kind, d),
                    (ConfigType::Integer, toml::Value::Integer(_))
                        | (ConfigType::String, toml::Value::String(_))
                        | (ConfigType::Boolean, toml::Value::Boolean(_))
                        | (ConfigType::Array, toml::Value::Array(_))
                        | (ConfigType::Object, toml::Value::Table(_))
                );
                if !ok {
                    return Err(invalid(&format!("config.{key}.default"), "does not match the key's type"));
                }
            }
        }
        Ok(())
    }

    /// The defaults of every configuration key, as a JSON object.
    pub fn default_config(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> =
            self.config.iter().filter_map(|(k, c)| c.default.as_ref().map(|d| (k.clone(), toml_to_json(d)))).collect();
        serde_json::Value::Object(map)
    }

    /// The tenant's config over the defaults, checked against the declared keys and types.
    pub fn effective_config(&self, tenant: &serde_json::Value) -> Result<serde_json::Value, ManifestError> {
        let mut out = self.default_config();
        let (Some(out_map), Some(given)) = (out.as_object_mut(), tenant.as_object()) else {
            return Ok(out);
        };
        for (k, v) in given {
            let Some(key) = self.config.get(k) else {
                let known: Vec<&str> = self.config.keys().map(String::as_str).collect();
                return Err(ManifestError::Invalid {
                    field: format!("config.{k}"),
                    reason: format!("the plugin has no such key; its keys are: {}", known.join(", ")),
                });
            };
            let ok = matches!(
                (key.kind, v),
                (ConfigType::Integer, serde_json::Value::Number(n)) if n.is_i64() || n.is_u64()
            ) || matches!(
                (key.kind, v),
                (ConfigType::String, serde_json::Value::String(_))
                    | (ConfigType::Boolean, serde_json::Value::Bool(_))
                    | (ConfigType::Array, serde_json::Value::Array(_))
                    | (ConfigType::Object, serde_json::Value::Object(_))
            );
            if !ok {
                return Err(ManifestError::Invalid {
                    field: format!("config.{k}"),
                    reason: format!("must be of type {:?}", key.kind).to_lowercase(),
                });
            }
            out_map.insert(k.clone(), v.clone());
        }
        Ok(out)
    }

    /// The code file, resolved against the manifest's folder.
    pub fn code_path(&self, manifest: &Path) -> PathBuf {
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let file = match self.kind {
            Kind::Wasm => self.component.as_deref(),
            Kind::Native => self.library.as_deref(),
        };
        dir.join(file.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "spend-limit"
version = "1.2.0"
world = "approval-step"
api = "1.0.0"
component = "spend_limit.wasm"
description = "x"

[config.level]
type = "integer"
default = 2
description = "Level of the stage"

[config.roles]
type = "array"
description = "Roles"
"#;

    #[test]
    fn a_good_manifest_parses_with_defaults() {
        let m = Manifest::parse(GOOD, "m.toml").expect("valid");
        assert_eq!(m.world, World::ApprovalStep);
        assert_eq!(m.default_config(), serde_json::json!({"level": 2}));
        assert_eq!(m.effective_config(&serde_json::json!({"level": 3})).expect("ok"), serde_json::json!({"level": 3}));
        assert!(m.effective_config(&serde_json::json!({"levle": 3})).is_err());
        assert!(m.effective_config(&serde_json::json!({"level": "3"})).is_err());
        assert!(m.effective_config(&serde_json::json!({"level": 2.5})).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = format!("{GOOD}\nsurprise = true\n");
        assert!(matches!(Manifest::parse(&text, "m.toml"), Err(ManifestError::Parse { .. })));
        let text = GOOD.replace("description = \"Level of the stage\"", "description = \"x\"\ndefualt = 1");
        assert!(Manifest::parse(&text, "m.toml").is_err());
    }

    #[test]
    fn a_newer_or_other_major_api_is_refused_with_a_clear_message() {
        for api in ["2.0.0", "1.2.0", "0.9.0"] {
            let text = GOOD.replace("api = \"1.0.0\"", &format!("api = \"{api}\""));
            let err = Manifest::parse(&text, "m.toml").expect_err(api);
            assert!(err.to_string().contains(api) && err.to_string().contains("speaks 1.1.0"), "{err}");
        }
    }

    #[test]
    fn every_released_minor_of_this_major_is_accepted() {
        for api in ["1.0.0", "1.1.0"] {
            let text = GOOD.replace("api = \"1.0.0\"", &format!("api = \"{api}\""));
            assert!(Manifest::parse(&text, "m.toml").is_ok(), "{api}");
        }
    }

    #[test]
    fn steps_may_not_ask_for_network_or_mail() {
        let text = GOOD
            .replace("description = \"x\"", "description = \"x\"\n[capabilities]\nhttp = [\"https://a.example:443\"]");
        assert!(Manifest::parse(&text, "m.toml").is_err());
    }

    #[test]
    fn origins_are_exact() {
        assert_eq!(parse_origin("https://erp.example.com:443"), Some(("https".into(), "erp.example.com".into(), 443)));
        assert_eq!(parse_origin("https://erp.example.com"), None);
        assert_eq!(parse_origin("https://erp.example.com:443/api"), None);
        assert_eq!(parse_origin("ftp://x:21"), None);
    }

    #[test]
    fn a_wildcard_lets_the_tenant_choose_any_exact_origin() {
        let exact = Capabilities { http: vec!["https://a.example:443".into()], mail: false };
        assert!(exact.declares_origin("https://a.example:443"));
        assert!(!exact.declares_origin("https://b.example:443"));
        let any = Capabilities { http: vec![ANY_ORIGIN.into()], mail: false };
        assert!(any.declares_origin("https://b.example:443"));
        assert!(!any.declares_origin("*"), "a grant is always one exact origin");
        assert!(!any.declares_origin("https://b.example"));
    }
}
