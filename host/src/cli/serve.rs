//! `greenlight serve`: the API and the dashboard on one listener, the shipped catalog installed
//! before it opens, and the background workers beside it.

use anyhow::{Context, Result};
use greenlight_host::approvals::{Approvals, LinkSettings};
use greenlight_host::domain::decision_link::LinkKeys;
use greenlight_host::domain::delivery::RetryPolicy;
use greenlight_host::runtime::Runtimes;
use greenlight_host::store::Store;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// How the notification dispatcher retries (`serve`).
#[derive(Debug, Clone, clap::Args)]
pub(super) struct DeliveryArgs {
    /// Delay before the second delivery attempt, in milliseconds; doubles with each further one.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    delivery_backoff_ms: u64,
    /// Longest delay between two delivery attempts, in seconds.
    #[arg(long, default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    delivery_max_delay_secs: u64,
    /// Attempts per delivery before it is dead (an admin can re-drive it).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    delivery_max_attempts: u32,
    /// Milliseconds between dispatcher rounds when there is nothing to send.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    dispatch_interval_ms: u64,
}

impl Default for DeliveryArgs {
    fn default() -> Self {
        DeliveryArgs {
            delivery_backoff_ms: 5_000,
            delivery_max_delay_secs: 3_600,
            delivery_max_attempts: 10,
            dispatch_interval_ms: 500,
        }
    }
}

impl DeliveryArgs {
    pub(super) fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: chrono::Duration::milliseconds(self.delivery_backoff_ms as i64),
            max_delay: chrono::Duration::seconds(self.delivery_max_delay_secs as i64),
            max_attempts: self.delivery_max_attempts,
        }
    }
}

/// Approve and reject links in stage e-mails (`serve`).
#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct LinkArgs {
    /// The operator's keys that sign the approve and reject links of stage e-mails (a TOML file
    /// of `[[keys]]` with `id` and a hex `secret`; the first signs, all verify). No links without it.
    #[arg(long, env = "GREENLIGHT_LINK_KEYS")]
    link_keys: Option<PathBuf>,
    /// The address people reach this host at, for the links, e.g. `https://approvals.example.com`
    /// (default: `http://` and the listening address).
    #[arg(long, env = "GREENLIGHT_PUBLIC_URL")]
    public_url: Option<String>,
    /// Hours an e-mail link stays good.
    #[arg(long, default_value_t = 72, value_parser = clap::value_parser!(u16).range(1..=720))]
    link_hours: u16,
}

impl LinkArgs {
    /// The link settings, or none when no key file is given.
    fn settings(&self, listening: std::net::SocketAddr, scheme: &str) -> Result<Option<LinkSettings>> {
        let Some(path) = &self.link_keys else { return Ok(None) };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the link keys {}", path.display()))?;
        let keys = LinkKeys::parse(&text).with_context(|| format!("the link keys {}", path.display()))?;
        let public_url = match &self.public_url {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => u.trim_end_matches('/').to_string(),
            Some(u) => anyhow::bail!("--public-url {u}: give the full address, starting with https:// (or http://)"),
            None if listening.ip().is_unspecified() => anyhow::bail!(
                "--link-keys: the host listens on every address ({listening}), so the e-mail links need the address people reach it at: give --public-url, e.g. https://approvals.example.com"
            ),
            None => format!("{scheme}://{listening}"),
        };
        let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
        if public_url.starts_with("http://") && !local.iter().any(|l| public_url.starts_with(l)) {
            eprintln!(
                "warning: decision links point to {public_url}: a link decides for its recipient, so serve it over https (--public-url https://…, behind a proxy that terminates TLS)"
            );
        }
        Ok(Some(LinkSettings { keys, public_url, valid_for: chrono::TimeDelta::hours(i64::from(self.link_hours)) }))
    }
}

/// How often the certificate files are checked for a change.
const TLS_CHECK_EVERY: Duration = Duration::from_secs(2);

/// The background work `serve` runs beside the API.
pub(super) struct Workers {
    pub(super) escalation_interval: Duration,
    pub(super) delivery: DeliveryArgs,
    /// Largest attached document the API accepts, bytes.
    pub(super) attachment_limit: usize,
    /// Whether the dashboard's cookies are `Secure`.
    pub(super) secure_cookies: bool,
    /// HTTPS, when the operator gave a certificate.
    pub(super) tls: Option<greenlight_host::api::tls::Tls>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub(super) trusted_proxies: Vec<std::net::IpAddr>,
    /// The catalog folder to install at start.
    pub(super) catalog: Option<PathBuf>,
    /// Decision links in e-mails.
    pub(super) links: LinkArgs,
    /// How often each tenant's pending orders are checked for policy drift.
    pub(super) drift_interval: Duration,
}

/// The `catalog` folder beside the running binary (`cargo xtask dist` lays one out), if any.
pub(super) fn default_catalog() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.join("catalog");
    dir.is_dir().then_some(dir)
}

pub(super) fn serve(store: Store, listen: &str, runtimes: Runtimes, workers: Workers) -> Result<()> {
    let rt = super::runtime()?;
    rt.block_on(async move {
        // The catalog is in place before the first request can arrive.
        let approvals = Approvals::new(store.clone(), runtimes).with_attachment_limit(workers.attachment_limit);
        if let Some(dir) = &workers.catalog {
            let report = approvals
                .install_catalog(dir)
                .await
                .map_err(|e| anyhow::anyhow!("the catalog {}: {e}", dir.display()))?;
            eprintln!(
                "catalog {}: {} installed, {} newer versions offered, {} unchanged",
                dir.display(),
                report.installed.len(),
                report.offered.len(),
                report.unchanged
            );
            for s in &report.skipped {
                eprintln!("catalog: skipped {s}");
            }
        }
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let scheme = if workers.tls.is_some() { "https" } else { "http" };
        let approvals = match workers.links.settings(addr, scheme)? {
            Some(links) => {
                eprintln!(
                    "decision links on: signed with key '{}', pointing to {}",
                    links.keys.signing_key_id(),
                    links.public_url
                );
                approvals.with_decision_links(links)
            }
            None => approvals,
        };
        if let Some(tls) = &workers.tls {
            tls.watch(TLS_CHECK_EVERY);
        }
        println!("listening on {scheme}://{addr}");
        std::io::stdout().flush()?;
        let escalator = tokio::spawn(approvals.clone().run_escalator(workers.escalation_interval));
        let drift = tokio::spawn(approvals.clone().run_drift_checks(workers.drift_interval));
        let access_log = tokio::spawn(approvals.clone().run_access_log());
        let approvals_for_shutdown = approvals.clone();
        let every = Duration::from_millis(workers.delivery.dispatch_interval_ms);
        let dispatcher = tokio::spawn(approvals.clone().run_dispatcher(workers.delivery.policy(), every));
        let web =
            greenlight_host::web::WebState { approvals: approvals.clone(), secure_cookies: workers.secure_cookies };
        let trusted = greenlight_host::api::extract::TrustedProxies(workers.trusted_proxies.clone());
        let app =
            greenlight_host::web::app(web).merge(greenlight_host::api::app(approvals)).layer(axum::Extension(trusted));
        greenlight_host::api::serve(listener, app, workers.tls.as_ref()).await?;
        escalator.abort();
        drift.abort();
        // What the access log still holds is written before the store closes.
        approvals_for_shutdown.access_log().stop();
        if tokio::time::timeout(Duration::from_secs(5), access_log).await.is_err() {
            tracing::warn!("the access log did not finish writing within 5 s at shutdown");
        }
        dispatcher.abort();
        store.close();
        Ok(())
    })
}
