//! The HTTPS client that talks to the ACME server, trusting what Traefik's client (lego) trusts: `caCertificates` and
//! `LEGO_CA_CERTIFICATES` (PEM files) instead of, or with `caSystemCertPool` on top of, the system roots;
//! `caServerName` / `LEGO_CA_SERVER_NAME` as the name the server's certificate must carry. The responses to the URLs
//! [`Downloads`] watches are recorded on their way (certificate downloads, for `preferredChain`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper_rustls::{FixedServerNameResolver, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::chains::Downloads;
use crate::settings::AcmeSettings;
use crate::AcmeError;

pub fn build(
    settings: &AcmeSettings,
    downloads: &Downloads,
) -> Result<Box<dyn HttpClient>, AcmeError> {
    let mut files: Vec<String> = settings.ca_certificates.clone();
    if let Ok(paths) = std::env::var("LEGO_CA_CERTIFICATES") {
        files.extend(
            paths
                .split([':', ','])
                .filter(|p| !p.trim().is_empty())
                .map(|p| p.trim().to_string()),
        );
    }
    let system_too = settings.ca_system_cert_pool
        || std::env::var("LEGO_CA_SYSTEM_CERT_POOL").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let mut roots = RootCertStore::empty();
    if files.is_empty() || system_too {
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
    }
    for file in &files {
        let invalid = |message: String| AcmeError::CaCertificates {
            path: file.clone(),
            message,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
            .map_err(|e| invalid(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("no certificate in the file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| invalid(e.to_string()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| AcmeError::CaCertificates {
        path: String::new(),
        message: e.to_string(),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let server_name = match settings.ca_server_name.as_str() {
        "" => std::env::var("LEGO_CA_SERVER_NAME").unwrap_or_default(),
        name => name.to_string(),
    };
    if !server_name.is_empty() {
        let name = ServerName::try_from(server_name.clone()).map_err(|e| AcmeError::Settings {
            resolver: String::new(),
            message: format!("caServerName {server_name:?}: {e}"),
        })?;
        builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name));
    }
    let connector = builder.enable_http1().build();
    let client: Client<_, BodyWrapper<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    Ok(Box::new(TimedClient {
        inner: client,
        response_header_timeout: settings.client_response_header_timeout,
        downloads: downloads.clone(),
    }))
}

/// Bounds how long the ACME server may take to answer (`clientResponseHeaderTimeout`), and records watched downloads.
struct TimedClient<C> {
    inner: C,
    response_header_timeout: Duration,
    downloads: Downloads,
}

impl<C: HttpClient> HttpClient for TimedClient<C> {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let watched = self
            .downloads
            .is_watched(request.uri())
            .then(|| request.uri().clone());
        let response = self.inner.request(request);
        let limit = self.response_header_timeout;
        let downloads = self.downloads.clone();
        Box::pin(async move {
            let answer = async move {
                let response = response.await?;
                match watched {
                    Some(uri) => downloads.record(&uri, response).await,
                    None => Ok(response),
                }
            };
            match tokio::time::timeout(limit, answer).await {
                Ok(result) => result,
                Err(_) => Err(instant_acme::Error::Other(
                    format!("the ACME server did not answer within {limit:?}").into(),
                )),
            }
        })
    }
}
