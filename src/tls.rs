//! The tenant listener's certificates: loaded from PEM files, chosen per handshake by SNI, reloaded
//! from disk without a restart.
//!
//! [`TlsStore`] is a service (it knows no request and no server state). It holds one entry per
//! configured certificate (`server.tls`), each with the DNS names of its subjectAltName; a handshake
//! gets the certificate whose name equals the client's server name (SNI), else the one with a matching
//! `*.` wildcard (one label), else the first configured certificate, which is also what a client without
//! SNI gets. [`TlsStore::reload`] re-reads the files: a renewed pair serves the handshakes that follow
//! (connections already open keep theirs); a pair that cannot be read, parsed or whose key does not match
//! is logged, once per content, and the old certificate keeps serving. [`TlsStore::watch`] calls it
//! every `reload_interval`; config reload calls it too. [`TlsStore::expiry`] lists each certificate's
//! name and not-after time for metrics. This module must not look at HTTP: which tenant answers is
//! the Host header's business (`tenant.rs`), never SNI's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::{CertificateFiles, TlsSettings};

/// What is wrong with a certificate and key pair.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("no PEM certificate in it")]
    NoCertificate,
    #[error("a certificate in it cannot be read: {0}")]
    BadCertificate(String),
    #[error("no PEM private key in it")]
    NoKey,
    #[error("the private key cannot be used: {0}")]
    BadKey(String),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
}

impl PairError {
    /// Whether the certificate file (rather than the key file) is the one to fix.
    pub(crate) fn in_certificate(&self) -> bool {
        matches!(
            self,
            PairError::NoCertificate | PairError::BadCertificate(_)
        )
    }

    /// What to do about it.
    pub(crate) fn hint(&self) -> &'static str {
        match self {
            PairError::NoCertificate | PairError::BadCertificate(_) => {
                "a PEM chain, leaf first (`-----BEGIN CERTIFICATE-----`), e.g. fullchain.pem"
            }
            PairError::NoKey | PairError::BadKey(_) => {
                "the unencrypted PEM private key (PKCS#8, RSA or EC), e.g. privkey.pem"
            }
            PairError::KeyMismatch => {
                "`cert` and `key` come from different certificates; use the key the certificate was issued for"
            }
        }
    }
}

/// Why the listener's TLS could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS file `{file}`: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS certificate `{cert}` with key `{key}`: {error}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        error: PairError,
    },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate pair, parsed and checked.
pub(crate) struct ParsedPair {
    pub certified: Arc<CertifiedKey>,
    /// The DNS names of the leaf's subjectAltName, lower-case (`*.` wildcards kept as written).
    pub names: Vec<String>,
    /// The leaf's not-after time, seconds since the epoch.
    pub not_after: i64,
    /// The leaf's serial number, hex with colons.
    pub serial: String,
}

/// The crypto provider of every TLS setting in portico: ring, with rustls's safe defaults.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM chain (leaf first) and its PEM key, and checks that they belong together.
pub(crate) fn parse_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<ParsedPair, PairError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| PairError::BadCertificate(error.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(PairError::NoCertificate);
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|error| PairError::BadCertificate(error.to_string()))?;
    let names = dns_names(&parsed);
    let not_after = parsed.validity().not_after.timestamp();
    let serial = parsed.raw_serial_as_string();
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => PairError::NoKey,
        other => PairError::BadKey(other.to_string()),
    })?;
    let certified =
        CertifiedKey::from_der(chain, key, &provider()).map_err(|error| match error {
            rustls::Error::InconsistentKeys(_) => PairError::KeyMismatch,
            other => PairError::BadKey(other.to_string()),
        })?;
    Ok(ParsedPair {
        certified: Arc::new(certified),
        names,
        not_after,
        serial,
    })
}

fn dns_names(certificate: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(san)) = certificate.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// One configured certificate as it serves now.
struct Entry {
    files: CertificateFiles,
    pair: ParsedPair,
    /// The files' content it was loaded from, to see a renewal without parsing again.
    digest: [u8; 32],
}

/// The certificates that serve handshakes now; replaced whole on reload.
struct Loaded {
    entries: Vec<Arc<Entry>>,
    /// Name (or `*.domain`) → index into `entries`; the first certificate listing a name wins.
    by_name: HashMap<String, usize>,
}

impl Loaded {
    fn new(entries: Vec<Arc<Entry>>) -> Self {
        let mut by_name = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            for name in &entry.pair.names {
                by_name.entry(name.clone()).or_insert(index);
            }
        }
        Loaded { entries, by_name }
    }

    fn choose(&self, server_name: Option<&str>) -> Option<&Arc<Entry>> {
        let chosen = server_name.and_then(|name| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            self.by_name.get(&name).copied().or_else(|| {
                let (_, domain) = name.split_once('.')?;
                self.by_name.get(&format!("*.{domain}")).copied()
            })
        });
        self.entries.get(chosen.unwrap_or(0))
    }
}

/// One certificate's expiry, for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateExpiry {
    /// The first DNS name of the certificate, or its file when it has none.
    pub name: String,
    /// The certificate file.
    pub file: PathBuf,
    /// Not-after, seconds since the epoch.
    pub not_after: i64,
    /// Serial number, hex with colons.
    pub serial: String,
}

/// The certificates of the tenant listener. See the module documentation.
pub(crate) struct TlsStore {
    current: ArcSwap<Loaded>,
    /// Serialises reloads; remembers the content of each file pair that was refused, so a broken file
    /// is logged once rather than at every look.
    refused: Mutex<HashMap<PathBuf, [u8; 32]>>,
}

impl std::fmt::Debug for TlsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStore")
            .field("certificates", &self.current.load().entries.len())
            .finish()
    }
}

impl TlsStore {
    /// Loads every configured pair; any that cannot be used stops the start.
    pub(crate) fn load(settings: &TlsSettings) -> Result<Arc<TlsStore>, TlsError> {
        let mut entries = Vec::with_capacity(settings.certificates.len());
        for files in &settings.certificates {
            let (cert_pem, key_pem) = read_pair(files)?;
            let pair = parse_pair(&cert_pem, &key_pem).map_err(|error| TlsError::Pair {
                cert: files.cert.clone(),
                key: files.key.clone(),
                error,
            })?;
            entries.push(Arc::new(Entry {
                files: files.clone(),
                pair,
                digest: digest(&cert_pem, &key_pem),
            }));
        }
        for entry in &entries {
            log_loaded(entry, "TLS certificate loaded");
        }
        Ok(Arc::new(TlsStore {
            current: ArcSwap::from_pointee(Loaded::new(entries)),
            refused: Mutex::default(),
        }))
    }

    /// The rustls server settings of the tenant listener: this store picks the certificate, ALPN
    /// offers `h2` then `http/1.1`, TLS 1.2 and 1.3 with rustls's safe default cipher suites.
    pub(crate) fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Re-reads every certificate file now (the files stay those the store was loaded with). A renewed,
    /// good pair replaces its entry for new handshakes; a bad one is logged and the old one stays.
    /// Returns how many certificates were replaced.
    pub(crate) fn reload(&self) -> usize {
        let mut refused = self.refused.lock();
        let current = self.current.load_full();
        let mut replaced = 0;
        let mut entries = Vec::with_capacity(current.entries.len());
        for old in &current.entries {
            match renewed(old, &mut refused) {
                Some(entry) => {
                    log_loaded(&entry, "TLS certificate renewed");
                    entries.push(Arc::new(entry));
                    replaced += 1;
                }
                None => entries.push(old.clone()),
            }
        }
        if replaced > 0 {
            self.current.store(Arc::new(Loaded::new(entries)));
        }
        replaced
    }

    /// Looks for renewed files every `interval` until `shutdown`, and warns about certificates that
    /// expire within two weeks (at start, then once a day).
    pub(crate) async fn watch(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        self.warn_if_expiring();
        let mut warned = tokio::time::Instant::now();
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; the files were just read
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let store = self.clone();
            if tokio::task::spawn_blocking(move || store.reload())
                .await
                .is_err()
            {
                tracing::warn!("TLS certificate reload failed to run");
            }
            if warned.elapsed() >= Duration::from_secs(24 * 3600) {
                self.warn_if_expiring();
                warned = tokio::time::Instant::now();
            }
        }
    }

    fn warn_if_expiring(&self) {
        const SOON: i64 = 14 * 24 * 3600;
        let now = i64::try_from(crate::clock::unix_now()).unwrap_or(i64::MAX);
        for certificate in self.expiry() {
            let left = certificate.not_after.saturating_sub(now);
            if left < SOON {
                tracing::warn!(
                    name = %certificate.name,
                    file = %certificate.file.display(),
                    not_after = certificate.not_after,
                    days_left = left / 86_400,
                    "TLS certificate expires soon (or has expired); renew it, portico picks up the new files"
                );
            }
        }
    }

    /// Every certificate's name and not-after time, in configured order.
    pub(crate) fn expiry(&self) -> Vec<CertificateExpiry> {
        self.current
            .load()
            .entries
            .iter()
            .map(|entry| CertificateExpiry {
                name: entry
                    .pair
                    .names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| entry.files.cert.display().to_string()),
                file: entry.files.cert.clone(),
                not_after: entry.pair.not_after,
                serial: entry.pair.serial.clone(),
            })
            .collect()
    }
}

impl ResolvesServerCert for TlsStore {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.current.load();
        loaded
            .choose(client_hello.server_name())
            .map(|entry| entry.pair.certified.clone())
    }
}

/// The entry's files read again: `Some` with a new entry when they changed and are good.
fn renewed(old: &Entry, refused: &mut HashMap<PathBuf, [u8; 32]>) -> Option<Entry> {
    let files = &old.files;
    let (cert_pem, key_pem) = match read_pair(files) {
        Ok(pems) => pems,
        Err(error) => {
            // A missing file (mid-rotation, or deleted): say so once, keep serving the old one.
            let marker = [0u8; 32];
            if refused.insert(files.cert.clone(), marker) != Some(marker) {
                tracing::warn!(%error, "TLS certificate could not be read again; the loaded one keeps serving");
            }
            return None;
        }
    };
    let digest = digest(&cert_pem, &key_pem);
    if digest == old.digest {
        refused.remove(&files.cert);
        return None;
    }
    if refused.get(&files.cert) == Some(&digest) {
        return None; // this content was refused before and logged then
    }
    match parse_pair(&cert_pem, &key_pem) {
        Ok(pair) => {
            refused.remove(&files.cert);
            Some(Entry {
                files: files.clone(),
                pair,
                digest,
            })
        }
        Err(error) => {
            refused.insert(files.cert.clone(), digest);
            let file = if error.in_certificate() {
                &files.cert
            } else {
                &files.key
            };
            tracing::warn!(
                file = %file.display(),
                %error,
                hint = error.hint(),
                serving = %old.pair.serial,
                "a changed TLS certificate was refused; the loaded one keeps serving"
            );
            None
        }
    }
}

fn log_loaded(entry: &Entry, what: &str) {
    tracing::info!(
        file = %entry.files.cert.display(),
        names = %entry.pair.names.join(","),
        serial = %entry.pair.serial,
        not_after = entry.pair.not_after,
        "{what}"
    );
}

fn read_pair(files: &CertificateFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    Ok((read(&files.cert)?, read(&files.key)?))
}

fn read(file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|source| TlsError::Read {
        file: file.to_owned(),
        source,
    })
}

fn digest(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((cert_pem.len() as u64).to_be_bytes());
    hasher.update(cert_pem);
    hasher.update(key_pem);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `names` with `serial`, as PEM chain and key.
    fn pair(names: &[&str], serial: u64) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        params.serial_number = Some(serial.into());
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, (cert, key): &(String, String)) -> CertificateFiles {
        let files = CertificateFiles {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        files
    }

    fn serials(store: &TlsStore) -> Vec<String> {
        store.expiry().into_iter().map(|c| c.serial).collect()
    }

    #[test]
    fn sni_picks_by_name_then_wildcard_then_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TlsSettings {
            certificates: vec![
                write(dir.path(), "a", &pair(&["portal.acme.test"], 1)),
                write(
                    dir.path(),
                    "b",
                    &pair(&["portal.globex.test", "*.globex.test"], 2),
                ),
            ],
            reload_interval: Duration::from_secs(5),
        };
        let store = TlsStore::load(&settings).unwrap();
        let loaded = store.current.load();
        let serial = |name: Option<&str>| loaded.choose(name).map(|e| e.pair.serial.clone());
        assert_eq!(serial(Some("portal.acme.test")).as_deref(), Some("01"));
        assert_eq!(serial(Some("PORTAL.GLOBEX.TEST.")).as_deref(), Some("02"));
        assert_eq!(serial(Some("shop.globex.test")).as_deref(), Some("02"));
        assert_eq!(
            serial(Some("a.shop.globex.test")).as_deref(),
            Some("01"),
            "one label only"
        );
        assert_eq!(serial(Some("unknown.test")).as_deref(), Some("01"));
        assert_eq!(serial(None).as_deref(), Some("01"));
        assert_eq!(store.expiry()[1].name, "portal.globex.test");
    }

    #[test]
    fn a_good_renewal_replaces_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), "a", &pair(&["portal.acme.test"], 1));
        let settings = TlsSettings {
            certificates: vec![files.clone()],
            reload_interval: Duration::from_secs(5),
        };
        let store = TlsStore::load(&settings).unwrap();
        assert_eq!(store.reload(), 0, "nothing changed");

        // Key of another certificate, then garbage, then a missing file: the old one stays.
        let renewed = pair(&["portal.acme.test"], 2);
        let other = pair(&["portal.acme.test"], 3);
        std::fs::write(&files.cert, &renewed.0).unwrap();
        std::fs::write(&files.key, &other.1).unwrap();
        assert_eq!(store.reload(), 0);
        assert_eq!(store.reload(), 0, "refused once, not re-parsed");
        std::fs::write(&files.cert, "garbage").unwrap();
        assert_eq!(store.reload(), 0);
        std::fs::remove_file(&files.cert).unwrap();
        assert_eq!(store.reload(), 0);
        assert_eq!(serials(&store), ["01"]);

        write(dir.path(), "a", &renewed);
        assert_eq!(store.reload(), 1);
        assert_eq!(serials(&store), ["02"]);
    }

    #[test]
    fn pairs_are_checked() {
        let (cert, key) = pair(&["a.test"], 1);
        let (_, other_key) = pair(&["a.test"], 2);
        assert!(parse_pair(cert.as_bytes(), key.as_bytes()).is_ok());
        assert!(matches!(
            parse_pair(cert.as_bytes(), other_key.as_bytes()),
            Err(PairError::KeyMismatch)
        ));
        assert!(matches!(
            parse_pair(b"", key.as_bytes()),
            Err(PairError::NoCertificate)
        ));
        assert!(matches!(
            parse_pair(cert.as_bytes(), b"nothing"),
            Err(PairError::NoKey)
        ));
    }
}
