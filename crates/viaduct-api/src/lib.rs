//! The REST API and the web dashboard.
//!
//! The API answers Traefik's `/api/...` endpoints with Traefik's JSON shapes, so scripts and
//! tools written against Traefik keep working. What it reports is decided when a
//! configuration is compiled ([`RuntimeView`]: statuses, errors, relations) or when the
//! process starts ([`ApiInfo`]); an API call only filters, pages and turns the objects it
//! shows into JSON. The only live part is each server's health (`serverStatus`), which the
//! caller reads at request time.
//!
//! The dashboard is a hand-written single page (HTML, CSS and JavaScript embedded in the
//! binary) that reads the same API.

#![forbid(unsafe_code)]

mod dashboard;
mod handlers;
mod info;
mod json;
mod listing;
mod shape;
mod streams;
#[cfg(test)]
mod tests;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use handlers::{serve_api, serve_dashboard};
pub use info::{ApiInfo, ApiSettings};
pub use view::{Definition, EntryPointFacts, ObjectInfo, ObjectSet, Problems, RuntimeView, Status};

/// An answer: the body is always small and complete.
pub type Reply = http::Response<bytes::Bytes>;

/// Each load balancer's servers and their health (`UP`/`DOWN`), by qualified service name.
pub type ServerStatuses = BTreeMap<String, BTreeMap<String, &'static str>>;

/// What the API serves for one compiled configuration.
#[derive(Debug)]
pub struct Api {
    pub info: Arc<ApiInfo>,
    pub runtime: RuntimeView,
}
