//! Obtaining one certificate: order, answer each authorization's challenge, finalize, download.

use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use viaduct_tls::AcmeState;

use crate::chains::{self, Downloads};
use crate::dns::{DnsProvider, DnsRecord};
use crate::keys::{alpn_challenge_certificate, csr};
use crate::settings::AcmeSettings;
use crate::storage::{StoredCertificate, StoredDomain};
use crate::AcmeError;

/// How long validations and issuance may take before the order is given up (and retried later).
const ORDER_TIMEOUT: Duration = Duration::from_secs(180);

/// What is published while an order is pending, withdrawn whatever its outcome.
enum Published {
    HttpToken(String),
    AlpnCertificate(String),
    DnsRecord(DnsRecord),
}

/// Orders a certificate for `domain` (main first, then SANs) and returns it in storage form.
pub async fn obtain(
    account: &Account,
    downloads: &Downloads,
    domain: &StoredDomain,
    settings: &AcmeSettings,
    dns: Option<&DnsProvider>,
    state: &AcmeState,
) -> Result<StoredCertificate, AcmeError> {
    let mut names = vec![domain.main.clone()];
    for san in &domain.sans {
        if !names.contains(san) {
            names.push(san.clone());
        }
    }
    let label = names.join(",");
    let failed = |message: String| AcmeError::Order {
        domains: label.clone(),
        message,
    };
    let mut published = Vec::new();
    let result = tokio::time::timeout(
        ORDER_TIMEOUT,
        run_order(
            account,
            downloads,
            &names,
            settings,
            dns,
            state,
            &mut published,
        ),
    )
    .await;
    for item in published {
        withdraw(item, dns, state).await;
    }
    let (chain, key) = match result {
        Ok(outcome) => outcome.map_err(failed)?,
        Err(_) => return Err(failed(format!("not issued within {ORDER_TIMEOUT:?}"))),
    };
    Ok(StoredCertificate {
        domain: domain.clone(),
        certificate: chain.into_bytes(),
        key,
        store: "default".into(),
    })
}

/// Returns the PEM chain and the PEM (PKCS#8) key.
async fn run_order(
    account: &Account,
    downloads: &Downloads,
    names: &[String],
    settings: &AcmeSettings,
    dns: Option<&DnsProvider>,
    state: &AcmeState,
    published: &mut Vec<Published>,
) -> Result<(String, Vec<u8>), String> {
    let identifiers: Vec<Identifier> = names
        .iter()
        .map(|name| match name.parse::<std::net::IpAddr>() {
            Ok(ip) => Identifier::Ip(ip),
            Err(_) => Identifier::Dns(name.clone()),
        })
        .collect();
    let mut new_order = NewOrder::new(&identifiers);
    if !settings.profile.is_empty() {
        new_order = new_order.profile(&settings.profile);
    }
    let mut order = account
        .new_order(&new_order)
        .await
        .map_err(|e| format!("creating the order: {e}"))?;
    let mut delay = Duration::ZERO;
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization =
            authorization.map_err(|e| format!("fetching an authorization: {e}"))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("authorization is {other:?}")),
        }
        let wildcard = authorization.wildcard;
        let kind = challenge_kind(settings, wildcard)?;
        let Some(mut challenge) = authorization.challenge(kind.clone()) else {
            return Err(format!("the server offers no {kind:?} challenge"));
        };
        let domain =
            match challenge.identifier().identifier {
                Identifier::Dns(domain) => domain.clone(),
                Identifier::Ip(ip) => ip.to_string(),
                _ => return Err(
                    "the server asks to validate an identifier that is neither a name nor an IP"
                        .into(),
                ),
            };
        let key_authorization = challenge.key_authorization();
        match kind {
            ChallengeType::Http01 => {
                state.add_http_token(&challenge.token, key_authorization.as_str());
                published.push(Published::HttpToken(challenge.token.clone()));
                delay = delay.max(
                    settings
                        .http_challenge
                        .as_ref()
                        .map_or(Duration::ZERO, |h| h.delay),
                );
            }
            ChallengeType::TlsAlpn01 => {
                let certificate =
                    alpn_challenge_certificate(&domain, key_authorization.digest().as_ref())
                        .map_err(|e| format!("TLS-ALPN-01 certificate for {domain}: {e}"))?;
                state.add_alpn_certificate(&domain, certificate);
                published.push(Published::AlpnCertificate(domain.clone()));
                delay = delay.max(
                    settings
                        .tls_challenge
                        .as_ref()
                        .map_or(Duration::ZERO, |t| t.delay),
                );
            }
            _ => {
                let provider = dns.ok_or("dnsChallenge has no usable provider")?;
                let record = DnsRecord {
                    domain: domain.clone(),
                    token: challenge.token.clone(),
                    key_authorization: key_authorization.as_str().to_string(),
                    value: key_authorization.dns_value(),
                };
                provider.present(&record).await.map_err(|e| e.to_string())?;
                let (fqdn, value) = (record.fqdn(), record.value.clone());
                published.push(Published::DnsRecord(record));
                if let Some(dns) = &settings.dns_challenge {
                    if !dns.delay_before_checks.is_zero() {
                        tokio::time::sleep(dns.delay_before_checks).await;
                    }
                    if !dns.disable_checks {
                        crate::propagation::wait_for_txt(&fqdn, &value, &dns.resolvers).await?;
                    }
                }
            }
        }
        tracing::debug!(domain = %domain, challenge = ?kind, "challenge published");
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        challenge
            .set_ready()
            .await
            .map_err(|e| format!("{domain}: {kind:?} challenge: {e}"))?;
    }
    let retries = RetryPolicy::new().timeout(Duration::from_secs(90));
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(|e| format!("waiting for validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!(
            "validation failed: {}",
            order_problem(&mut order).await
        ));
    }
    let key = settings
        .key_type
        .generate()
        .await
        .map_err(|e| e.to_string())?;
    let request = csr(names, &key.pair, settings.disable_common_name)?;
    order
        .finalize_csr(&request)
        .await
        .map_err(|e| format!("finalizing: {e}"))?;
    let issuance = RetryPolicy::new().timeout(settings.certificate_timeout);
    let chain = order
        .poll_certificate(&issuance)
        .await
        .map_err(|e| format!("downloading the certificate: {e}"))?;
    let chain = match order.state().certificate.clone() {
        Some(url) if !settings.preferred_chain.is_empty() => {
            chains::prefer(account, downloads, &url, chain, &settings.preferred_chain).await
        }
        _ => chain,
    };
    Ok((
        chain,
        pem("PRIVATE KEY", key.pkcs8.secret_pkcs8_der()).into_bytes(),
    ))
}

/// DNS-01 when configured (and always for wildcards), else HTTP-01, else TLS-ALPN-01.
fn challenge_kind(settings: &AcmeSettings, wildcard: bool) -> Result<ChallengeType, String> {
    if settings.dns_challenge.is_some() {
        return Ok(ChallengeType::Dns01);
    }
    if wildcard {
        return Err("a wildcard certificate needs dnsChallenge".into());
    }
    if settings.http_challenge.is_some() {
        return Ok(ChallengeType::Http01);
    }
    Ok(ChallengeType::TlsAlpn01)
}

/// The reasons the server gives for a failed order, from its authorizations' challenges.
async fn order_problem(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        for challenge in &authorization.challenges {
            if let Some(error) = &challenge.error {
                reasons.push(format!("{:?}: {error}", challenge.r#type));
            }
        }
    }
    if reasons.is_empty() {
        "the order is invalid".into()
    } else {
        reasons.join("; ")
    }
}

async fn withdraw(item: Published, dns: Option<&DnsProvider>, state: &AcmeState) {
    match item {
        Published::HttpToken(token) => state.remove_http_token(&token),
        Published::AlpnCertificate(domain) => state.remove_alpn_certificate(&domain),
        Published::DnsRecord(record) => {
            if let Some(provider) = dns {
                if let Err(e) = provider.cleanup(&record).await {
                    tracing::warn!(error = %e, "DNS-01 cleanup failed");
                }
            }
        }
    }
}

/// PEM with 64-column lines, as Go's `pem.Encode` writes it.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}
