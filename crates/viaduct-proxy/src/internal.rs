//! The observability services Viaduct answers itself (`ping@internal`,
//! `prometheus@internal`), and the backend facts the access log records.

use std::time::Instant;

use http::{header, HeaderValue, Response, StatusCode};
use viaduct_observe::{ScrapeExtras, UpstreamFacts, PROMETHEUS_CONTENT_TYPE};
use viaduct_upstream::{full_body, Body, InternalService, Server, ServerStatus};

use crate::handler::ConnectionContext;
use crate::responses;
use crate::Snapshot;

pub(crate) fn answer(service: InternalService, conn: &ConnectionContext) -> Response<Body> {
    let snapshot = conn.snapshots.load();
    let hub = &snapshot.observe;
    match service {
        InternalService::Ping => match &hub.ping {
            Some(ping) => ping.respond(),
            None => responses::not_found(),
        },
        InternalService::Prometheus => match &hub.metrics {
            Some(registry) if registry.serves_prometheus() => {
                let mut response =
                    Response::new(full_body(registry.render(&scrape_extras(&snapshot))));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE),
                );
                response
            }
            _ => responses::not_found(),
        },
        // Answered elsewhere (`forward.rs`); never routed here.
        InternalService::Whoami
        | InternalService::Noop
        | InternalService::Api
        | InternalService::Dashboard => responses::for_status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// What metrics read from the live configuration: each load balancer's servers' health and
/// the certificates served.
pub fn scrape_extras(snapshot: &Snapshot) -> ScrapeExtras {
    let servers = snapshot
        .server_statuses()
        .into_iter()
        .flat_map(|(service, servers)| {
            servers
                .into_iter()
                .map(move |(url, status)| viaduct_observe::metrics::ServerUp {
                    service: service.clone(),
                    url,
                    up: status == ServerStatus::Up,
                })
        })
        .collect();
    let certificates = snapshot
        .tls
        .served_certificates()
        .into_iter()
        .map(|cert| viaduct_observe::metrics::CertificateExpiry {
            common_name: cert.common_name,
            serial: cert.serial,
            sans: cert.sans,
            not_after_unix: cert.not_after_unix,
        })
        .collect();
    ScrapeExtras {
        servers,
        certificates,
    }
}

/// Attaches what the access log records about the backend that answered.
pub(crate) fn note_upstream(response: &mut Response<Body>, server: &Server, sent_at: Instant) {
    let facts = UpstreamFacts {
        url: server.url.clone(),
        status: response.status().as_u16(),
        duration: sent_at.elapsed(),
        sent_at,
    };
    response.extensions_mut().insert(facts);
}
