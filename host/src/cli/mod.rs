//! The command line: `greenlight --db PATH <command>`.

mod demo;
mod step_test;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use greenlight_host::approvals::Approvals;
use greenlight_host::runtime::Runtimes;
use greenlight_host::store::{Store, StoreOptions, audit, directory};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Greenlight: the approval engine.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// SQLite database file (created if missing).
    #[arg(long, global = true, env = "GREENLIGHT_DB", default_value = "greenlight.db")]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tenant administration.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Most changes committed per fsync (1 disables group commit).
        #[arg(long, default_value_t = 512)]
        max_batch: usize,
    },
    /// Audit log: verify or export.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run one approval step locally on an order file.
    Step {
        #[command(subcommand)]
        command: StepCommand,
    },
    /// Create a demo tenant with users of every role and the shipped scripts, then serve.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Folder of shipped scripts to install and enable.
        #[arg(long, default_value = "scripts")]
        scripts: PathBuf,
        /// Write the users' tokens as shell variables to this file.
        #[arg(long)]
        tokens_file: Option<PathBuf>,
        /// Set up the demo data and exit without serving.
        #[arg(long)]
        no_serve: bool,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints the first user's (`admin`) bearer token as the only line on stdout.
    Create {
        /// Tenant name.
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify every tenant's hash chain (or one). Exits 1 if any entry is bad.
    Verify {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
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
enum StepCommand {
    /// Print the step's output for the order as JSON.
    Test {
        /// A Rhai script.
        #[arg(long)]
        script: PathBuf,
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
            let approvals = Approvals::new(store, Runtimes::new());
            let (_, token) = runtime()?.block_on(approvals.create_tenant(&name)).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { listen, max_batch } => {
            let store = open(&cli.db, max_batch)?;
            serve(store, &listen)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Verify { tenant } } => {
            let store = open(&cli.db, 1)?;
            let tenants = store.read_blocking(directory::tenant_ids)?;
            let mut all_ok = true;
            let mut seen = false;
            for (id, name) in tenants {
                if tenant.as_ref().is_some_and(|t| *t != name) {
                    continue;
                }
                seen = true;
                let report = store.read_blocking(|c| audit::verify(c, &id))?;
                all_ok &= report.ok;
                let mut line = serde_json::to_value(&report)?;
                line["tenant"] = serde_json::json!(name);
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
            let store = open(&cli.db, 1)?;
            let tenants = store.read_blocking(directory::tenant_ids)?;
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
                let page = store.read_blocking(|c| audit::page(c, &id, after, 5_000))?;
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
        Command::Step { command: StepCommand::Test { script, order, config } } => {
            step_test::run(&script, &order, config.as_deref())
        }
        Command::Demo { listen, scripts, tokens_file, no_serve } => {
            let store = open(&cli.db, 512)?;
            demo::setup(&store, &scripts, tokens_file.as_deref(), &listen)?;
            if !no_serve {
                serve(store, &listen)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(store: Store, listen: &str) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        std::io::stdout().flush()?;
        let approvals = Approvals::new(store.clone(), Runtimes::new());
        greenlight_host::api::serve(listener, approvals).await?;
        store.close();
        Ok(())
    })
}
