//! The ACME task: keeps every resolver's certificates obtained and renewed, publishes them to the TLS store, and asks
//! for a recompile when they change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{Account, ExternalAccountKey, NewAccount};
use rustls_pki_types::PrivatePkcs8KeyDer;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use viaduct_config::static_config::CertificatesResolver;
use viaduct_tls::{AcmeCertificate, AcmeState, CertificateRequest};

use crate::certificate::LoadedCertificate;
use crate::chains::Downloads;
use crate::dns::DnsProvider;
use crate::settings::AcmeSettings;
use crate::storage::{
    CertificateStorage, FileStorage, Registration, ResolverData, StoredAccount, StoredDomain,
};
use crate::{client, order, AcmeError};

/// First wait after a failed order; doubled on each further failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Every configured ACME resolver, run by one task.
pub struct AcmeService {
    state: Arc<AcmeState>,
    resolvers: Vec<Resolver>,
    /// Resolver names routers ask for that do not exist or could not be set up (reported once).
    reported_unknown: HashSet<String>,
}

struct Resolver {
    name: String,
    settings: AcmeSettings,
    storage: Arc<dyn CertificateStorage>,
    dns: Option<DnsProvider>,
    data: ResolverData,
    /// Parallel to `data.certificates`; `None` for an entry that does not parse (kept in storage, not served).
    loaded: Vec<Option<LoadedCertificate>>,
    account: Option<Account>,
    /// Shared with the account's HTTP client, which records the certificate downloads `preferredChain` reads.
    downloads: Downloads,
    failures: HashMap<StoredDomain, Failure>,
    next_renewal_check: Instant,
}

/// Where a resolver announces a new certificate: published at once, then a recompile asked for.
struct Notify<'a> {
    state: &'a AcmeState,
    changed: &'a mpsc::Sender<()>,
}

struct Failure {
    retry_at: Instant,
    backoff: Duration,
}

impl AcmeService {
    /// Sets up the ACME resolvers of `resolvers` (others, e.g. Tailscale, are reported) and publishes their stored
    /// certificates at once, so that a restart serves them before any order. Resolvers that cannot be set up are
    /// returned as errors and left out.
    pub fn new(
        resolvers: &BTreeMap<String, CertificatesResolver>,
        state: Arc<AcmeState>,
    ) -> (AcmeService, Vec<AcmeError>) {
        let mut errors = Vec::new();
        let mut storages: HashMap<String, Arc<FileStorage>> = HashMap::new();
        let mut built = Vec::new();
        for (name, resolver) in resolvers {
            let Some(acme) = &resolver.acme else {
                errors.push(AcmeError::Settings {
                    resolver: name.clone(),
                    message: "only ACME resolvers are supported (tailscale is not)".into(),
                });
                continue;
            };
            let settings = match AcmeSettings::parse(name, acme) {
                Ok(settings) => settings,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let dns = match &settings.dns_challenge {
                Some(dns) => match DnsProvider::from_name(&dns.provider) {
                    Ok(provider) => Some(provider),
                    Err(e) => {
                        errors.push(AcmeError::Settings {
                            resolver: name.clone(),
                            message: e.to_string(),
                        });
                        continue;
                    }
                },
                None => None,
            };
            let storage = storages
                .entry(settings.storage.clone())
                .or_insert_with(|| Arc::new(FileStorage::new(&settings.storage)))
                .clone();
            let data = match storage.load(name) {
                Ok(data) => data.unwrap_or_default(),
                Err(e) => {
                    // A damaged file is not overwritten: the resolver stays off until it is repaired.
                    errors.push(AcmeError::Settings {
                        resolver: name.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let loaded = data
                .certificates
                .iter()
                .map(|stored| match LoadedCertificate::parse(stored) {
                    Ok(loaded) => Some(loaded),
                    Err(e) => {
                        tracing::warn!(resolver = %name, domain = %stored.domain.main, error = %e, "stored certificate is unusable; it is not served");
                        None
                    }
                })
                .collect();
            built.push(Resolver {
                name: name.clone(),
                settings,
                storage,
                dns,
                data,
                loaded,
                account: None,
                downloads: Downloads::new(),
                failures: HashMap::new(),
                next_renewal_check: Instant::now(),
            });
        }
        state.set_http_entry_points(
            built
                .iter()
                .filter_map(|r| r.settings.http_challenge.as_ref())
                .map(|h| h.entry_point.clone()),
        );
        let service = AcmeService {
            state,
            resolvers: built,
            reported_unknown: HashSet::new(),
        };
        service.publish();
        (service, errors)
    }

    /// The names of the resolvers that were set up.
    pub fn resolver_names(&self) -> Vec<String> {
        self.resolvers.iter().map(|r| r.name.clone()).collect()
    }

    /// Each resolver's `httpChallenge.entryPoint`, as (resolver, entry point).
    pub fn http_challenge_entry_points(&self) -> Vec<(String, String)> {
        self.resolvers
            .iter()
            .filter_map(|r| {
                let http = r.settings.http_challenge.as_ref()?;
                Some((r.name.clone(), http.entry_point.clone()))
            })
            .collect()
    }

    /// Runs until `requests` closes: orders what routers ask for, renews on Traefik's schedule, and sends on
    /// `changed` whenever the served certificates changed (the receiver recompiles the configuration).
    pub async fn run(
        mut self,
        mut requests: watch::Receiver<Vec<CertificateRequest>>,
        changed: mpsc::Sender<()>,
    ) {
        loop {
            let wanted = requests.borrow_and_update().clone();
            self.report_unknown(&wanted);
            let mut wake = Instant::now() + Duration::from_secs(24 * 3600);
            let notify = Notify {
                state: &self.state,
                changed: &changed,
            };
            for resolver in &mut self.resolvers {
                let mine: Vec<&CertificateRequest> = wanted
                    .iter()
                    .filter(|r| r.resolver == resolver.name)
                    .collect();
                resolver.work(&mine, &notify, &mut wake).await;
            }
            tokio::select! {
                result = requests.changed() => if result.is_err() { return },
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    fn publish(&self) {
        for resolver in &self.resolvers {
            resolver.publish(&self.state);
        }
    }

    fn report_unknown(&mut self, wanted: &[CertificateRequest]) {
        for request in wanted {
            let known = self.resolvers.iter().any(|r| r.name == request.resolver);
            if !known && self.reported_unknown.insert(request.resolver.clone()) {
                tracing::error!(resolver = %request.resolver, domain = %request.main, "certResolver does not exist or is not usable; the default certificate is served");
            }
        }
    }
}

impl Resolver {
    /// Renews what is due and orders what is missing; each new certificate is announced as soon as it is stored.
    async fn work(
        &mut self,
        wanted: &[&CertificateRequest],
        notify: &Notify<'_>,
        wake: &mut Instant,
    ) {
        let now = Instant::now();
        let (renew_before, check_interval) = self.settings.renewal();
        if now >= self.next_renewal_check {
            let due: Vec<StoredDomain> = self
                .data
                .certificates
                .iter()
                .zip(&self.loaded)
                .filter(|(_, loaded)| {
                    loaded.as_ref().is_some_and(|l| {
                        l.not_after
                            .duration_since(SystemTime::now())
                            .map_or(true, |left| left <= renew_before)
                    })
                })
                .map(|(stored, _)| stored.domain.clone())
                .collect();
            for domain in &due {
                self.obtain(domain, notify, wake).await;
            }
            // A failed renewal is retried on its backoff, not only at the next daily (or weekly) check.
            let retry = due
                .iter()
                .filter_map(|domain| self.failures.get(domain).map(|f| f.retry_at))
                .min();
            let next = Instant::now() + check_interval;
            self.next_renewal_check = retry.map_or(next, |retry| retry.min(next));
        }
        *wake = (*wake).min(self.next_renewal_check);
        for request in wanted {
            let domain = StoredDomain {
                main: request.main.clone(),
                sans: request.sans.clone(),
            };
            // Only the names no certificate of this resolver serves are ordered, as Traefik does.
            let mut missing = std::iter::once(&domain.main)
                .chain(&domain.sans)
                .filter(|name| !self.serves(name))
                .cloned();
            let Some(main) = missing.next() else {
                continue;
            };
            let domain = StoredDomain {
                main,
                sans: missing.collect(),
            };
            self.obtain(&domain, notify, wake).await;
        }
    }

    /// True if a certificate of this resolver serves `name`.
    fn serves(&self, name: &str) -> bool {
        self.loaded.iter().flatten().any(|cert| cert.covers(name))
    }

    async fn obtain(&mut self, domain: &StoredDomain, notify: &Notify<'_>, wake: &mut Instant) {
        if let Some(failure) = self.failures.get(domain) {
            if Instant::now() < failure.retry_at {
                *wake = (*wake).min(failure.retry_at);
                return;
            }
        }
        let renewal = self.data.certificates.iter().any(|c| c.domain == *domain);
        if renewal {
            tracing::info!(resolver = %self.name, domain = %domain.main, "renewing certificate");
        }
        let result = match self.ensure_account().await {
            Ok(account) => {
                order::obtain(
                    &account,
                    &self.downloads,
                    domain,
                    &self.settings,
                    self.dns.as_ref(),
                    notify.state,
                )
                .await
            }
            Err(e) => Err(e),
        };
        match result.and_then(|stored| {
            LoadedCertificate::parse(&stored)
                .map(|l| (stored, l))
                .map_err(|message| AcmeError::Order {
                    domains: domain.main.clone(),
                    message,
                })
        }) {
            Ok((stored, loaded)) => {
                self.failures.remove(domain);
                tracing::info!(resolver = %self.name, domain = %domain.main, sans = ?domain.sans, "certificate obtained");
                match self
                    .data
                    .certificates
                    .iter()
                    .position(|c| c.domain == *domain)
                {
                    Some(index) => {
                        self.data.certificates[index] = stored;
                        self.loaded[index] = Some(loaded);
                    }
                    None => {
                        self.data.certificates.push(stored);
                        self.loaded.push(Some(loaded));
                    }
                }
                self.save();
                self.publish(notify.state);
                let _ = notify.changed.try_send(());
            }
            Err(e) => {
                let message = e.to_string();
                if message.contains("accountDoesNotExist")
                    || message.contains("unauthorized") && message.contains("account")
                {
                    // The CA forgot the account (a test CA restarted, or a new CA at the same URL): register again.
                    self.account = None;
                    self.data.viaduct_account = None;
                }
                let backoff = self
                    .failures
                    .get(domain)
                    .map_or(FIRST_BACKOFF, |f| (f.backoff * 2).min(MAX_BACKOFF));
                let retry_at = Instant::now() + backoff;
                tracing::error!(resolver = %self.name, domain = %domain.main, sans = ?domain.sans, retry_in = ?backoff, error = %message, "cannot obtain a certificate; the default certificate is served meanwhile");
                self.failures
                    .insert(domain.clone(), Failure { retry_at, backoff });
                *wake = (*wake).min(retry_at);
            }
        }
    }

    /// The ACME account: restored from storage when its key is one Viaduct can sign with (P-256: Viaduct's own account;
    /// Traefik's use RSA keys), else registered and stored next to Traefik's.
    async fn ensure_account(&mut self) -> Result<Account, AcmeError> {
        if let Some(account) = &self.account {
            return Ok(account.clone());
        }
        let server = self.settings.ca_server.clone();
        let protocol = |source| AcmeError::Protocol {
            server: server.clone(),
            source,
        };
        let stored = [&self.data.viaduct_account, &self.data.account]
            .into_iter()
            .flatten()
            .find_map(|stored| {
                let uri = stored.registration.as_ref().map(|r| r.uri.clone())?;
                let key = PrivatePkcs8KeyDer::from(stored.private_key.clone());
                // An account belongs to one CA: after a switch (staging to production), register anew.
                let same_ca = origin(&uri).is_some() && origin(&uri) == origin(&server);
                let usable = same_ca && instant_acme::Key::from_pkcs8_der(key.clone_key()).is_ok();
                usable.then_some((uri, key))
            });
        if let Some((uri, key)) = stored {
            let builder =
                Account::builder_with_http(client::build(&self.settings, &self.downloads)?);
            let account = builder
                .from_parts(uri, key, server.clone())
                .await
                .map_err(protocol)?;
            self.account = Some(account.clone());
            return Ok(account);
        }
        let contact = format!("mailto:{}", self.settings.email);
        let contacts: Vec<&str> = if self.settings.email.is_empty() {
            Vec::new()
        } else {
            vec![contact.as_str()]
        };
        let new_account = NewAccount {
            contact: &contacts,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let eab = match &self.settings.eab {
            Some(eab) => {
                Some(
                    external_account_key(eab).map_err(|message| AcmeError::Settings {
                        resolver: self.name.clone(),
                        message,
                    })?,
                )
            }
            None => None,
        };
        let builder = Account::builder_with_http(client::build(&self.settings, &self.downloads)?);
        let (account, credentials) = builder
            .create(&new_account, server.clone(), eab.as_ref())
            .await
            .map_err(protocol)?;
        tracing::info!(resolver = %self.name, account = %account.id(), "ACME account registered");
        self.data.viaduct_account = Some(StoredAccount {
            email: self.settings.email.clone(),
            registration: Some(Registration {
                body: serde_json::json!({ "status": "valid", "contact": contacts }),
                uri: account.id().to_string(),
            }),
            private_key: credentials.private_key().secret_pkcs8_der().to_vec(),
            key_type: self.settings.key_type.stored_name().to_string(),
        });
        self.account = Some(account.clone());
        self.save();
        Ok(account)
    }

    /// Hands this resolver's servable certificates to the TLS store (served from the next compile on).
    fn publish(&self, state: &AcmeState) {
        let certificates = self
            .loaded
            .iter()
            .flatten()
            .map(|loaded| AcmeCertificate {
                names: loaded.names.clone(),
                key: loaded.key.clone(),
            })
            .collect();
        state.set_certificates(&self.name, certificates);
    }

    fn save(&self) {
        if let Err(e) = self.storage.save(&self.name, &self.data) {
            tracing::error!(resolver = %self.name, error = %e, "cannot save the ACME storage");
        }
    }
}

fn external_account_key(eab: &crate::settings::Eab) -> Result<ExternalAccountKey, String> {
    use base64::Engine as _;
    let text = eab.hmac_encoded.trim().trim_end_matches('=');
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .map_err(|e| format!("eab.hmacEncoded is not base64: {e}"))?;
    Ok(ExternalAccountKey::new(eab.kid.clone(), &key))
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    Some(&url[..scheme.len() + 3 + authority.len()])
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn accounts_belong_to_the_origin_of_their_ca() {
        assert_eq!(
            origin("https://acme-v02.api.letsencrypt.org/acme/acct/1"),
            Some("https://acme-v02.api.letsencrypt.org")
        );
        assert_eq!(
            origin("https://127.0.0.1:14000/dir"),
            Some("https://127.0.0.1:14000")
        );
        assert_eq!(origin("no scheme"), None);
        assert_ne!(
            origin("https://acme-staging-v02.api.letsencrypt.org/acme/acct/1"),
            origin("https://acme-v02.api.letsencrypt.org/directory")
        );
    }
}
