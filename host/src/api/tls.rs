//! HTTPS for `serve --tls-cert FILE --tls-key FILE`: rustls with the ring provider (no
//! OpenSSL), TLS 1.2 and 1.3 with rustls's safe defaults.
//!
//! - The certificate and key are read again when either file changes (checked every few
//!   seconds), so a renewed certificate is served without a restart; a pair that does not load
//!   (half-written, key and certificate not matching) is logged and the one in use kept.
//! - Handshakes run concurrently, each on its own task with a deadline, so a client that opens a
//!   connection and says nothing holds up nobody else; at most [`MAX_HANDSHAKES`] at once, and
//!   at most [`MAX_HANDSHAKES_PER_ADDRESS`] from one address, whose further connections are
//!   closed at once: one address cannot take every handshake slot.
//! - The accepted streams feed axum's server through a [`Listener`], so the routes, limits and
//!   graceful shutdown are the same as over plain HTTP.

use axum::serve::Listener;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Handshakes in progress at most; further connections wait to start theirs.
pub const MAX_HANDSHAKES: usize = 256;
/// Handshakes in progress from one address at most.
pub const MAX_HANDSHAKES_PER_ADDRESS: usize = 16;
/// How long a client has to complete its handshake.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// The certificate chain and private key files (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no PEM of the expected kind.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key does not belong to the certificate, or rustls refused them.
    #[error("the key {key} cannot serve the certificate {cert}: {reason}")]
    Pair {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// rustls's reason.
        reason: String,
    },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsFiles {
    /// Reads and checks the pair.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let file = |path: &Path, reason: String| TlsError::File { path: path.display().to_string(), reason };
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file(&self.cert, format!("cannot read a PEM certificate chain: {e}")))?;
        if certs.is_empty() {
            return Err(file(&self.cert, "holds no certificate; give the PEM chain, leaf first".into()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| file(&self.key, format!("cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}")))?;
        let pair = CertifiedKey::from_der(certs, key, &provider()).map_err(|e| TlsError::Pair {
            cert: self.cert.display().to_string(),
            key: self.key.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Arc::new(pair))
    }

    /// What identifies the files' current contents cheaply: modification time and size.
    fn stamp(&self) -> Option<[(SystemTime, u64); 2]> {
        let of = |p: &Path| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        Some([of(&self.cert)?, of(&self.key)?])
    }
}

/// The pair in use, swapped when the files change.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|k| k.clone())
    }
}

/// The loaded TLS configuration and the files it watches.
pub struct Tls {
    files: TlsFiles,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Loads the pair; the server refuses to start on a pair that does not load.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let current = Arc::new(Current(RwLock::new(files.load()?)));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Pair {
                cert: files.cert.display().to_string(),
                key: files.key.display().to_string(),
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // The server speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { files, current, acceptor: TlsAcceptor::from(Arc::new(config)) })
    }

    /// Re-reads the pair whenever either file changes, checking every `every`; runs until the
    /// runtime stops.
    pub fn watch(&self, every: Duration) {
        let (files, current) = (self.files.clone(), self.current.clone());
        tokio::spawn(async move {
            let mut seen = files.stamp();
            loop {
                tokio::time::sleep(every).await;
                let now = files.stamp();
                if now.is_none() || now == seen {
                    continue;
                }
                seen = now;
                match files.load() {
                    Ok(pair) => {
                        if let Ok(mut c) = current.0.write() {
                            *c = pair;
                        }
                        tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                    }
                    Err(e) => tracing::error!(
                        "TLS certificate not reloaded, the one in use stays: {e}; fix the files (they are read again when they change)"
                    ),
                }
            }
        });
    }

    /// Accepts TLS connections on `listener`.
    pub fn listen(&self, listener: TcpListener) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, incoming) = mpsc::channel(MAX_HANDSHAKES);
        let acceptor = self.acceptor.clone();
        tokio::spawn(accept_loop(listener, acceptor, tx));
        Ok(TlsListener { incoming, local })
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    acceptor: TlsAcceptor,
    established: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let per_address: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> = Arc::default();
    while !established.is_closed() {
        let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
        // axum's own accept: retries and logs what the OS refuses.
        let (tcp, addr) = Listener::accept(&mut listener).await;
        let Some(slot) = AddressSlot::take(&per_address, addr.ip()) else {
            tracing::debug!(%addr, "too many TLS handshakes from one address; connection closed");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, established) = (acceptor.clone(), established.clone());
        tokio::spawn(async move {
            let (_permit, _slot) = (permit, slot);
            match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = established.send((stream, addr)).await;
                }
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake not completed in time"),
            }
        });
    }
}

/// One handshake counted against its address while it runs.
struct AddressSlot {
    counts: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl AddressSlot {
    fn take(
        counts: &Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
    ) -> Option<AddressSlot> {
        let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= MAX_HANDSHAKES_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressSlot { counts: counts.clone(), ip })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Established TLS connections, for `axum::serve`.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept loop ended (the runtime is stopping): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
