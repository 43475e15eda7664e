//! The shipped catalog: the extensions a host offers every tenant, installed from a folder at
//! start (`serve --catalog DIR`), so a fresh database already lets an admin enable cost-center
//! approval without a command-line step.
//!
//! The folder holds `plugins/<name>/manifest.toml` with their components and
//! `scripts/<name>.rhai` with an optional `<name>.config.json` (the configuration a tenant starts
//! with). Installing is idempotent: what is already there is left alone. A plugin new to the
//! host is installed; a different version of an installed plugin is stored and *offered*
//! (`greenlight plugin upgrade NAME` takes it up), never swapped in under the tenants using it.
//! A script is offered to every tenant, who adopts a copy by enabling it; a newer catalog
//! version is offered to the tenants who adopted an older one. Every change is audited in every
//! tenant's chain (`extension_offered`).

use super::{ApprovalError, Approvals};
use crate::domain::audit::timestamp;
use crate::runtime::RuntimeError;
use crate::runtime::manifest::Manifest;
use crate::store::catalog::{self, CatalogScript, Change};
use crate::store::{StoreError, audit, directory, plugins};
use chrono::Utc;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What installing a catalog did, one line per extension that changed or could not be used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CatalogReport {
    /// Installed or offered for the first time: `name version` (plugins) or `name` (scripts).
    pub installed: Vec<String>,
    /// Newer versions offered beside the one in use.
    pub offered: Vec<String>,
    /// Entries already there, unchanged.
    pub unchanged: usize,
    /// Entries left out, with why.
    pub skipped: Vec<String>,
}

fn entries(dir: &Path, pick: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| pick(p)).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// Whether version `a` comes after `b`, both `MAJOR.MINOR.PATCH` (anything else is never newer).
fn is_newer(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Option<Vec<u64>> { v.split('.').map(|p| p.parse().ok()).collect() };
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a > b,
        _ => false,
    }
}

impl Approvals {
    /// Installs the catalog of a folder (see the module documentation).
    pub async fn install_catalog(&self, dir: &Path) -> Result<CatalogReport, ApprovalError> {
        if !dir.is_dir() {
            return Err(ApprovalError::NotFound(format!("the catalog folder {} does not exist", dir.display())));
        }
        let mut report = CatalogReport::default();
        let mut changed: Vec<serde_json::Value> = Vec::new();
        for manifest_path in entries(&dir.join("plugins"), |p| p.join("manifest.toml").is_file())
            .into_iter()
            .map(|p| p.join("manifest.toml"))
        {
            let shown = manifest_path.display().to_string();
            let manifest = match Manifest::load(&manifest_path) {
                Ok(m) => m,
                Err(e) => {
                    report.skipped.push(format!("{shown}: {e}"));
                    continue;
                }
            };
            let code = match std::fs::read(manifest.code_path(&manifest_path)) {
                Ok(bytes) => crate::runtime::wasm::code_hash(&bytes),
                Err(e) => {
                    report.skipped.push(format!("{}: its code cannot be read: {e}", manifest.name));
                    continue;
                }
            };
            let n = manifest.name.clone();
            let (current, offer) = self
                .store
                .read(move |c| -> Result<_, StoreError> { Ok((plugins::get(c, &n)?, catalog::plugin_offer(c, &n)?)) })
                .await?;
            let label = format!("{} {}", manifest.name, manifest.version);
            let (runtimes, store, path) = (self.runtimes.clone(), self.store.clone(), manifest_path.clone());
            let result = match (&current, &offer) {
                (Some(p), offer) if p.code_hash == code => {
                    // The catalog is back at the version in use: an offer of another one lapses.
                    if offer.is_some() {
                        let n = manifest.name.clone();
                        self.store.write(move |c| catalog::withdraw_offer(c, &n)).await?;
                    }
                    report.unchanged += 1;
                    continue;
                }
                (Some(p), _) if !is_newer(&manifest.version, p.manifest["version"].as_str().unwrap_or_default()) => {
                    report.skipped.push(format!(
                        "{label}: not newer than the installed {}; install it by hand to go back",
                        p.manifest["version"].as_str().unwrap_or("version")
                    ));
                    continue;
                }
                (Some(_), Some((hash, _))) if *hash == code => {
                    report.unchanged += 1;
                    continue;
                }
                (Some(_), _) => tokio::task::spawn_blocking(move || runtimes.offer(&store, &path)).await,
                (None, _) => tokio::task::spawn_blocking(move || runtimes.install(&store, &path)).await,
            };
            match result {
                Ok(Ok(_)) if current.is_some() => {
                    report.offered.push(label);
                    changed.push(serde_json::json!({"name": manifest.name, "kind": "plugin", "version": manifest.version, "code_hash": code, "offered": true}));
                }
                Ok(Ok(_)) => {
                    report.installed.push(label);
                    changed.push(serde_json::json!({"name": manifest.name, "kind": "plugin", "version": manifest.version, "code_hash": code}));
                }
                Ok(Err(RuntimeError::Store(e))) => return Err(e.into()),
                Ok(Err(e)) => report.skipped.push(format!("{label}: {e}")),
                Err(_) => return Err(ApprovalError::Internal("installing a catalog plugin panicked".into())),
            }
        }
        for source_path in entries(&dir.join("scripts"), |p| p.extension().is_some_and(|x| x == "rhai")) {
            let Some(name) = source_path.file_stem().and_then(|s| s.to_str()).map(String::from) else { continue };
            let source = match std::fs::read_to_string(&source_path) {
                Ok(s) => s,
                Err(e) => {
                    report.skipped.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let config_path = source_path.with_extension("config.json");
            let config = if config_path.exists() {
                match std::fs::read_to_string(&config_path).map(|t| serde_json::from_str::<serde_json::Value>(&t)) {
                    Ok(Ok(v)) if v.is_object() => v,
                    _ => {
                        report.skipped.push(format!("{name}: {} is not a JSON object", config_path.display()));
                        continue;
                    }
                }
            } else {
                serde_json::json!({})
            };
            if let Err(e) = self.runtimes.rhai.compile(&source) {
                report.skipped.push(format!("{name}: {e}"));
                continue;
            }
            let n = name.clone();
            if self.store.read(move |c| plugins::get(c, &n)).await?.is_some() {
                report.skipped.push(format!("{name}: the host has a plugin of that name, which is the shipped form"));
                continue;
            }
            let script = CatalogScript { hash: crate::runtime::rhai::source_hash(&source), name, source, config };
            let s2 = script.clone();
            let change = self.store.write(move |c| catalog::put_script(c, &s2, &timestamp(Utc::now()))).await?;
            match change {
                Change::Unchanged => report.unchanged += 1,
                Change::New => {
                    report.installed.push(script.name.clone());
                    changed.push(serde_json::json!({"name": script.name, "kind": "script", "code_hash": script.hash}));
                }
                Change::Updated => {
                    report.offered.push(script.name.clone());
                    changed.push(serde_json::json!({"name": script.name, "kind": "script", "code_hash": script.hash, "offered": true}));
                }
            }
        }
        if !changed.is_empty() {
            self.store
                .write(move |c| -> Result<(), StoreError> {
                    let now = Utc::now();
                    for (tenant_id, _) in directory::tenant_ids(c)? {
                        for entry in &changed {
                            audit::append(c, &tenant_id, now, "host", "extension_offered", None, entry.clone())?;
                        }
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(report)
    }

    /// Takes up the plugin version the catalog offers for `name`: it becomes the version every
    /// tenant runs, audited in every tenant's chain.
    pub async fn upgrade_plugin(&self, name: &str) -> Result<String, ApprovalError> {
        let n = name.to_string();
        self.store
            .write(move |c| -> Result<String, ApprovalError> {
                let (hash, version) = catalog::plugin_offer(c, &n)?
                    .ok_or_else(|| ApprovalError::NotFound(format!("no newer version of '{n}' is on offer")))?;
                let record = plugins::version(c, &n, &hash)?
                    .ok_or_else(|| ApprovalError::NotFound(format!("the offered version of '{n}' is not stored")))?;
                let at = timestamp(Utc::now());
                let v = plugins::NewVersion {
                    name: &n,
                    version: &version,
                    world: &record.world,
                    kind: &record.kind,
                    code_hash: &hash,
                    manifest: &record.manifest,
                    at: &at,
                };
                plugins::install(c, &v)?;
                let now = Utc::now();
                for (tenant_id, _) in directory::tenant_ids(c)? {
                    let data = serde_json::json!({"name": n, "version": version, "code_hash": hash});
                    audit::append(c, &tenant_id, now, "operator", "plugin_upgraded", None, data)?;
                }
                Ok(version)
            })
            .await
            .inspect(|_| self.policy_changed())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_later_version_is_newer() {
        assert!(super::is_newer("1.1.0", "1.0.9"));
        assert!(super::is_newer("1.10.0", "1.9.0"));
        assert!(!super::is_newer("1.0.0", "1.0.0"));
        assert!(!super::is_newer("0.9.0", "1.0.0"));
        assert!(!super::is_newer("1.1.0-beta", "1.0.0"));
    }
}
