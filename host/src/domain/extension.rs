//! What every layer knows of an extension, whatever runs it: the kind of code, the world a
//! plugin implements, and the plugin-API version it speaks. One type each, so no layer compares
//! them as strings.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of code an extension is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionKind {
    /// A tenant's Rhai script (always an approval step).
    Script,
    /// A WebAssembly component.
    Wasm,
    /// A native library (trusted vendors only).
    Native,
}

impl ExtensionKind {
    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtensionKind::Script => "script",
            ExtensionKind::Wasm => "wasm",
            ExtensionKind::Native => "native",
        }
    }

    /// The kind of this name, if it is one.
    pub fn parse(s: &str) -> Option<ExtensionKind> {
        [ExtensionKind::Script, ExtensionKind::Wasm, ExtensionKind::Native].into_iter().find(|k| k.as_str() == s)
    }
}

/// Which world of the plugin API an extension implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Exports `step.evaluate`; imports only `host` (and `records` from 1.1).
    ApprovalStep,
    /// Exports the connector API; may import `http`.
    Connector,
    /// Exports `deliver`; may import `http` and `mail`.
    Notifier,
}

impl World {
    /// The WIT world name.
    pub fn as_str(self) -> &'static str {
        match self {
            World::ApprovalStep => "approval-step",
            World::Connector => "connector",
            World::Notifier => "notifier",
        }
    }

    /// The world of this WIT name, if it is one.
    pub fn parse(s: &str) -> Option<World> {
        [World::ApprovalStep, World::Connector, World::Notifier].into_iter().find(|w| w.as_str() == s)
    }
}

/// A plugin-API version, `MAJOR.MINOR.PATCH`: what a manifest declares, what a component
/// imports and exports, what the host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Incompatible changes.
    pub major: u64,
    /// Additions: a plugin built for 1.0 runs on a 1.1 host.
    pub minor: u64,
    /// Fixes.
    pub patch: u64,
}

impl ApiVersion {
    /// The version this host speaks (`plugin-api/wit`, package `greenlight:plugin`).
    pub const HOST: ApiVersion = ApiVersion { major: 1, minor: 1, patch: 0 };

    /// Parses exactly three dot-separated decimal numbers; anything else is `None`. The one
    /// parser for every place a version is read, so they all refuse the same inputs.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let mut parts = s
            .split('.')
            .map(|p| (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse::<u64>().ok()).flatten());
        let v = ApiVersion { major: parts.next()??, minor: parts.next()??, patch: parts.next()?? };
        parts.next().is_none().then_some(v)
    }

    /// Whether a plugin built for this version runs on a host speaking `host`: the same major
    /// version, and no minor version the host does not have yet.
    pub fn runs_on(self, host: ApiVersion) -> bool {
        self.major == host.major && self.minor <= host.minor
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(ApiVersion::parse("1.0.0"), Some(ApiVersion { major: 1, minor: 0, patch: 0 }));
        assert_eq!(ApiVersion::parse("1.12.3").map(|v| v.to_string()), Some("1.12.3".into()));
        for bad in [
            "1.0",
            "1.0.0.0",
            "1..0",
            "v1.0.0",
            "1.0.x",
            "1.0.-1",
            "+1.0.0",
            "",
            "1.0.0-rc1",
            "99999999999999999999.0.0",
        ] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn minor_versions_only_grow() {
        let v = |s| ApiVersion::parse(s).expect("version");
        assert!(v("1.0.0").runs_on(ApiVersion::HOST));
        assert!(v("1.1.9").runs_on(ApiVersion::HOST));
        assert!(!v("1.2.0").runs_on(ApiVersion::HOST));
        assert!(!v("2.0.0").runs_on(ApiVersion::HOST));
        assert!(!v("0.9.0").runs_on(ApiVersion::HOST));
    }

    #[test]
    fn names_round_trip() {
        for w in [World::ApprovalStep, World::Connector, World::Notifier] {
            assert_eq!(World::parse(w.as_str()), Some(w));
        }
        for k in [ExtensionKind::Script, ExtensionKind::Wasm, ExtensionKind::Native] {
            assert_eq!(ExtensionKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(World::parse("step"), None);
    }
}
