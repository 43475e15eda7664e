//! The command line: `greenlight --db PATH <command>`.

mod demo;
mod serve;
mod simulate;
mod step_test;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use greenlight_host::approvals::Approvals;
use greenlight_host::runtime::{RuntimeOptions, Runtimes};
use greenlight_host::store::{Store, StoreOptions};
use serve::{DeliveryArgs, LinkArgs, Workers, default_catalog, serve};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Greenlight: the approval engine.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// SQLite database file (created if missing).
    #[arg(long, global = true, env = "GREENLIGHT_DB", default_value = "greenlight.db")]
    db: PathBuf,
    #[command(flatten)]
    runtime: RuntimeFlags,
    #[command(subcommand)]
    command: Command,
}

/// Operator settings of the extension runtimes.
#[derive(clap::Args, Clone)]
struct RuntimeFlags {
    /// Allow native plugins (trusted vendors only: native code is not sandboxed).
    #[arg(long, global = true, env = "GREENLIGHT_ALLOW_NATIVE_PLUGINS")]
    allow_native_plugins: bool,
    /// Let plugins call loopback and private addresses (tests, on-premise systems).
    #[arg(long, global = true, env = "GREENLIGHT_ALLOW_PRIVATE_NETWORK")]
    allow_private_network: bool,
    /// Wall-clock deadline of one plugin call, milliseconds.
    #[arg(long, global = true, default_value_t = 50)]
    plugin_deadline_ms: u64,
    /// Fuel (about one unit per wasm instruction) of one plugin call.
    #[arg(long, global = true, default_value_t = 200_000_000)]
    plugin_fuel: u64,
    /// Linear memory of one plugin instance, MiB.
    #[arg(long, global = true, default_value_t = 32)]
    plugin_memory_mib: usize,
    /// Let approval steps reuse an idle instance of the same tenant, extension, version and
    /// configuration instead of a fresh one per call: faster, but a step that keeps state between
    /// calls could carry it from one of the tenant's orders to the next. Replays run fresh: replay
    /// orders decided since, and turn it off if a step differs (plugin-api/README.md, "Reusing
    /// instances").
    #[arg(long, global = true, env = "GREENLIGHT_REUSE_STEP_INSTANCES")]
    reuse_step_instances: bool,
    /// TOML file of secret headers the host adds to plugins' requests, per origin:
    /// `[[http]] origin = "https://erp.example.com:443"` and `headers = { Authorization = "..." }`.
    #[arg(long, global = true, env = "GREENLIGHT_SECRETS")]
    secrets: Option<PathBuf>,
    /// The SMTP relay behind the plugins' `mail` capability, e.g. smtp://127.0.0.1:2525 or
    /// smtps://user:password@mail.example.com:465. Prefer the environment variable: it keeps the
    /// password out of process listings. Without it, mail is denied.
    #[arg(long, global = true, env = "GREENLIGHT_SMTP_RELAY", hide_env_values = true)]
    smtp_relay: Option<String>,
    /// Sender address of the mail the relay sends.
    #[arg(long, global = true, env = "GREENLIGHT_MAIL_FROM", default_value = "greenlight@localhost")]
    mail_from: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    #[serde(default)]
    http: Vec<SecretOrigin>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretOrigin {
    origin: String,
    headers: std::collections::BTreeMap<String, String>,
}

impl RuntimeFlags {
    fn runtimes(&self) -> Result<Runtimes> {
        let mut options = RuntimeOptions {
            allow_native: self.allow_native_plugins,
            allow_private_network: self.allow_private_network,
            ..RuntimeOptions::default()
        };
        options.wasm.deadline = std::time::Duration::from_millis(self.plugin_deadline_ms.max(1));
        options.wasm.fuel = self.plugin_fuel;
        options.wasm.memory_bytes = self.plugin_memory_mib.clamp(4, 4096) << 20;
        options.wasm.reuse_step_instances = self.reuse_step_instances;
        if let Some(path) = &self.secrets {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let file: SecretsFile =
                toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
            if let Some(bad) =
                file.http.iter().find(|o| greenlight_host::runtime::manifest::parse_origin(&o.origin).is_none())
            {
                bail!(
                    "{}: origin '{}' must be scheme://host:port, e.g. https://erp.example.com:443",
                    path.display(),
                    bad.origin
                );
            }
            options.http_secrets = file.http.into_iter().map(|o| (o.origin, o.headers.into_iter().collect())).collect();
        }
        if let Some(url) = &self.smtp_relay {
            let relay = greenlight_host::runtime::relay::SmtpRelay::new(url, &self.mail_from)
                .map_err(|e| anyhow::anyhow!("--smtp-relay: {e}"))?;
            options.mail_relay = Some(std::sync::Arc::new(relay));
        }
        Runtimes::with_options(options).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Tenant administration.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Serve the HTTP API and the dashboard.
    Serve {
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Most changes committed per fsync (1 disables group commit).
        #[arg(long, default_value_t = 512)]
        max_batch: usize,
        /// Seconds between sweeps that escalate overdue approval stages.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        escalation_interval: u64,
        /// Seconds between checks of each tenant's pending orders for policy drift (default a
        /// day); a change of a tenant's rules triggers one sooner.
        #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
        drift_interval: u64,
        /// Largest attached document, MiB (at most 512: documents are kept in SQLite, whose
        /// largest value is just under 1 GB).
        #[arg(long, env = "GREENLIGHT_MAX_ATTACHMENT_MIB", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=512))]
        max_attachment_mib: u64,
        /// Mark the dashboard's session cookie `Secure`: set it when browsers reach the host
        /// over HTTPS through a proxy that terminates TLS (implied by `--tls-cert`).
        #[arg(long)]
        secure_cookies: bool,
        /// Serve HTTPS with this PEM certificate chain (leaf first); needs `--tls-key`. Both
        /// files are read again when they change, so a renewed certificate needs no restart.
        #[arg(long, env = "GREENLIGHT_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1).
        #[arg(long, env = "GREENLIGHT_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// The address of a reverse proxy whose `X-Forwarded-For` tells the client's address
        /// (for sign-in throttling); repeat for several. Nobody's is believed by default.
        #[arg(long = "trusted-proxy", value_name = "IP")]
        trusted_proxies: Vec<std::net::IpAddr>,
        /// The shipped extensions to offer every tenant, installed at start (idempotent); by
        /// default the `catalog` folder next to the binary, when there is one.
        #[arg(long, env = "GREENLIGHT_CATALOG")]
        catalog: Option<PathBuf>,
        #[command(flatten)]
        delivery: DeliveryArgs,
        #[command(flatten)]
        links: LinkArgs,
    },
    /// Audit log: verify or export.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Try candidate rule changes on a tenant's past orders (like POST /v1/admin/simulations):
    /// prints one line per order that would change, then the totals.
    Simulate {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// A JSON file with the list of changes, e.g.
        /// `[{"extension": "executive-threshold", "config": {"threshold_minor": 100000}}]`.
        #[arg(long)]
        changes: PathBuf,
        /// Only orders in this status.
        #[arg(long)]
        status: Option<String>,
        /// At most this many orders, newest first.
        #[arg(long, default_value_t = 500)]
        limit: usize,
    },
    /// Check a tenant's pending orders for policy drift now (as `serve` does daily and after
    /// rule changes); prints what the check did as JSON.
    DriftCheck {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
    },
    /// Replay an order's evaluation with the exact code and configuration that made it; prints
    /// the report as JSON and exits 1 when any step now answers differently.
    Replay {
        /// The order's id.
        #[arg(long)]
        order: String,
        /// Which evaluation, from 1 (default: the latest).
        #[arg(long)]
        evaluation: Option<usize>,
    },
    /// Run one approval step locally on an order file.
    Step {
        #[command(subcommand)]
        command: StepCommand,
    },
    /// Plugins: install and list (host-wide).
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// A tenant's use of an extension: enable, order, configure, grant capabilities.
    Extension {
        #[command(subcommand)]
        command: ExtensionCommand,
    },
    /// Create a demo tenant with users of every role and the shipped scripts, then serve.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Folder of shipped scripts to install and enable.
        #[arg(long, default_value = "scripts")]
        scripts: PathBuf,
        /// Folder of built plugins (`cargo xtask plugins` → target/plugins) to install.
        #[arg(long)]
        plugins: Option<PathBuf>,
        /// Write the users' tokens as shell variables to this file.
        #[arg(long)]
        tokens_file: Option<PathBuf>,
        /// Set up the demo data and exit without serving.
        #[arg(long)]
        no_serve: bool,
        #[command(flatten)]
        links: LinkArgs,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints the first user's (`admin`) bearer token as the only line on stdout.
    Create {
        /// Tenant name.
        name: String,
    },
    /// Set a user's dashboard password, read from the first line of stdin (so it never shows
    /// in the process list or the shell history); the first admin's, typically.
    SetPassword {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// User name.
        user: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify every tenant's hash chain (or one). Exits 1 if any entry is bad.
    Verify {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Also rehash every attached document (R9).
        #[arg(long)]
        deep: bool,
    },
    /// Print a tenant's entries as JSON lines.
    Export {
        /// Tenant name (optional when there is only one).
        #[arg(long)]
        tenant: Option<String>,
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after_seq: u64,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Validate, precompile and store a plugin from its manifest; it becomes the current version.
    Install {
        /// The plugin's manifest (TOML); the component or library sits beside it.
        manifest: PathBuf,
    },
    /// List installed plugins.
    List,
    /// Take up the newer version of a plugin that the catalog offers: every tenant runs it from
    /// now on (audited in every tenant's chain).
    Upgrade {
        /// Plugin name.
        name: String,
    },
}

#[derive(Subcommand)]
enum ExtensionCommand {
    /// Set a tenant's use of an extension (like PUT /v1/admin/extensions/{name}).
    Set {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Extension name.
        name: String,
        /// Enable (true) or disable (false).
        #[arg(long, action = clap::ArgAction::Set)]
        enabled: bool,
        /// Run position.
        #[arg(long)]
        position: Option<i64>,
        /// Configuration as a JSON object.
        #[arg(long)]
        config: Option<String>,
        /// Grant an HTTP origin the plugin declares (repeatable).
        #[arg(long = "grant-http")]
        grant_http: Vec<String>,
        /// Grant mail.
        #[arg(long)]
        grant_mail: bool,
        /// Count its rejections as compliance rejections in reports (true or false).
        #[arg(long, action = clap::ArgAction::Set)]
        compliance: Option<bool>,
    },
}

#[derive(Subcommand)]
enum StepCommand {
    /// Print the step's output for the order as JSON (with --plugin, also time, fuel and memory).
    Test {
        /// A Rhai script.
        #[arg(long, conflicts_with = "plugin", required_unless_present = "plugin")]
        script: Option<PathBuf>,
        /// A plugin's manifest (WASM approval step).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// The order file: `{"order": {...}, "requester"?: {...}, "cost_center"?: {...}}`.
        #[arg(long)]
        order: PathBuf,
        /// The step's configuration (a JSON object).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Entry point: runs the command and turns errors into a message and exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GREENLIGHT_LOG")
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("greenlight: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn open(db: &PathBuf, max_batch: usize) -> Result<Store> {
    Store::open(db, StoreOptions { max_batch, ..StoreOptions::default() })
        .with_context(|| format!("opening {}", db.display()))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Tenant { command: TenantCommand::Create { name } } => {
            let store = open(&cli.db, 1)?;
            let approvals = Approvals::new(store, cli.runtime.runtimes()?);
            let (_, token) = runtime()?.block_on(approvals.create_tenant(&name)).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenant { command: TenantCommand::SetPassword { tenant, user } } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            let approvals = Approvals::new(open(&cli.db, 1)?, cli.runtime.runtimes()?);
            runtime()?
                .block_on(approvals.set_password_as_operator(&tenant, &user, password))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!("{user} of {tenant} can sign in to the dashboard");
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            max_batch,
            escalation_interval,
            drift_interval,
            max_attachment_mib,
            secure_cookies,
            tls_cert,
            tls_key,
            trusted_proxies,
            catalog,
            delivery,
            links,
        } => {
            // A certificate that does not load stops the start, before the database is touched.
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => {
                    Some(greenlight_host::api::tls::Tls::load(greenlight_host::api::tls::TlsFiles { cert, key })?)
                }
                _ => None,
            };
            let store = open(&cli.db, max_batch)?;
            let workers = Workers {
                escalation_interval: Duration::from_secs(escalation_interval),
                delivery,
                attachment_limit: usize::try_from(max_attachment_mib << 20).unwrap_or(usize::MAX),
                secure_cookies: secure_cookies || tls.is_some(),
                tls,
                trusted_proxies,
                catalog: catalog.or_else(default_catalog),
                links,
                drift_interval: Duration::from_secs(drift_interval),
            };
            serve(store, &listen, cli.runtime.runtimes()?, workers)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate { tenant, changes, status, limit } => {
            let approvals = Approvals::new(open(&cli.db, 1)?, cli.runtime.runtimes()?);
            simulate::run(&approvals, &tenant, &changes, status.as_deref(), limit)
        }
        Command::DriftCheck { tenant } => {
            let approvals = Approvals::new(open(&cli.db, 1)?, cli.runtime.runtimes()?);
            let check =
                runtime()?.block_on(approvals.check_drift_as_operator(&tenant)).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string(&check)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { order, evaluation } => {
            let approvals = Approvals::new(open(&cli.db, 1)?, cli.runtime.runtimes()?);
            let report = runtime()?
                .block_on(approvals.replay_as_operator(&order, evaluation))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.identical { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Audit { command: AuditCommand::Verify { tenant, deep } } => {
            let approvals = Approvals::new(open(&cli.db, 1)?, cli.runtime.runtimes()?);
            let rt = runtime()?;
            let tenants = rt.block_on(approvals.tenants()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut all_ok = true;
            let mut seen = false;
            for (id, name) in tenants {
                if tenant.as_ref().is_some_and(|t| *t != name) {
                    continue;
                }
                seen = true;
                let report = rt.block_on(approvals.verify_audit_of(&id)).map_err(|e| anyhow::anyhow!("{e}"))?;
                all_ok &= report.ok;
                let mut line = serde_json::to_value(&report)?;
                line["tenant"] = serde_json::json!(name);
                if deep {
                    let documents =
                        rt.block_on(approvals.verify_documents_of(&id)).map_err(|e| anyhow::anyhow!("{e}"))?;
                    all_ok &= documents.changed.is_empty();
                    line["ok"] = serde_json::json!(report.ok && documents.changed.is_empty());
                    line["documents"] = serde_json::to_value(&documents)?;
                }
                println!("{line}");
            }
            if let Some(t) = tenant
                && !seen
            {
                bail!("no tenant named '{t}'");
            }
            Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Audit { command: AuditCommand::Export { tenant, after_seq } } => {
            let approvals = Approvals::new(open(&cli.db, 1)?, cli.runtime.runtimes()?);
            let rt = runtime()?;
            let tenants = rt.block_on(approvals.tenants()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let id = match (tenant, tenants.as_slice()) {
                (Some(t), _) => tenants
                    .iter()
                    .find(|(_, n)| *n == t)
                    .map(|(id, _)| id.clone())
                    .with_context(|| format!("no tenant named '{t}'"))?,
                (None, [(id, _)]) => id.clone(),
                (None, _) => bail!("there are several tenants; choose one with --tenant NAME"),
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut after = after_seq;
            loop {
                let page =
                    rt.block_on(approvals.audit_page_of(&id, after, 5_000)).map_err(|e| anyhow::anyhow!("{e}"))?;
                let Some(last) = page.last().map(|e| e.seq) else { break };
                for e in &page {
                    serde_json::to_writer(&mut out, e)?;
                    out.write_all(b"\n")?;
                }
                after = last;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Step { command: StepCommand::Test { script, plugin, order, config } } => match (script, plugin) {
            (Some(script), _) => step_test::run(&script, &order, config.as_deref()),
            (None, Some(plugin)) => step_test::run_plugin(&cli.runtime.runtimes()?, &plugin, &order, config.as_deref()),
            (None, None) => bail!("give --script FILE or --plugin MANIFEST"),
        },
        Command::Plugin { command: PluginCommand::Install { manifest } } => {
            let store = open(&cli.db, 1)?;
            let installed = cli.runtime.runtimes()?.install(&store, &manifest).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string(&installed)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin { command: PluginCommand::Upgrade { name } } => {
            let approvals = Approvals::new(open(&cli.db, 1)?, cli.runtime.runtimes()?);
            let version = runtime()?.block_on(approvals.upgrade_plugin(&name)).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::json!({"name": name, "version": version}));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin { command: PluginCommand::List } => {
            let approvals = Approvals::new(open(&cli.db, 1)?, cli.runtime.runtimes()?);
            let plugins = runtime()?.block_on(approvals.installed_plugins()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut out = std::io::stdout().lock();
            for p in plugins {
                let line = serde_json::json!({
                    "name": p.name, "version": p.manifest["version"], "world": p.manifest["world"],
                    "kind": p.manifest["kind"], "code_hash": p.code_hash, "installed_at": p.installed_at,
                });
                // A closed pipe (`| head`) ends the listing quietly.
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Extension {
            command:
                ExtensionCommand::Set { tenant, name, enabled, position, config, grant_http, grant_mail, compliance },
        } => {
            let config = config
                .map(|c| serde_json::from_str::<serde_json::Value>(&c))
                .transpose()
                .context("--config must be a JSON object")?;
            let grants = (!grant_http.is_empty() || grant_mail)
                .then_some(greenlight_host::approvals::Grants { http: grant_http, mail: grant_mail });
            let approvals = Approvals::new(open(&cli.db, 1)?, cli.runtime.runtimes()?);
            let body = greenlight_host::approvals::ExtensionUpdate {
                enabled,
                position,
                config,
                grants,
                compliance,
                upgrade: false,
            };
            let setting = runtime()?
                .block_on(approvals.configure_extension_as_operator(&tenant, &name, body))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string(&setting)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { listen, scripts, plugins, tokens_file, no_serve, links } => {
            let store = open(&cli.db, 512)?;
            let runtimes = cli.runtime.runtimes()?;
            demo::setup(&store, &runtimes, &scripts, plugins.as_deref(), tokens_file.as_deref(), &listen)?;
            if !no_serve {
                let workers = Workers {
                    escalation_interval: Duration::from_secs(60),
                    delivery: DeliveryArgs::default(),
                    attachment_limit: greenlight_host::approvals::DEFAULT_ATTACHMENT_LIMIT,
                    secure_cookies: false,
                    tls: None,
                    trusted_proxies: Vec::new(),
                    catalog: None,
                    links,
                    drift_interval: Duration::from_secs(86_400),
                };
                serve(store, &listen, runtimes, workers)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
