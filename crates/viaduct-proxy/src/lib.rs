//! Viaduct's data plane: entry points, the compiled configuration snapshot, and the HTTP
//! request pipeline (route → forward).
//!
//! Data flows one way: a merged dynamic configuration is [`compile`]d into an immutable
//! [`Snapshot`], which is swapped into the [`SnapshotHandle`] atomically. Every request loads
//! the current snapshot once and never takes a lock.

mod acme_challenge;
#[doc(hidden)]
pub mod bench_api;
mod compile;
mod deadline;
mod entrypoint;
mod forward;
mod forwarded;
mod handler;
mod hop;
mod http1;
mod internal;
mod listener;
mod redirect;
mod responses;
mod snapshot;
mod tcp_entry;
mod validate;
mod whoami;

pub use compile::{compile, CompileContext, EntryPointInfo, ObjectStatus};
pub use entrypoint::{EntryPointError, EntryPointRuntime, Protocol, ProxyProtocolTrust};
pub use http1::SERVER_ENV as HTTP1_SERVER_ENV;
pub use internal::scrape_extras;
pub use listener::{bind, serve, Shutdown};
pub use redirect::Redirect;
pub use snapshot::{Snapshot, SnapshotHandle};
pub use tcp_entry::{bind_udp, serve_udp};
pub use viaduct_tcp::TcpTransportDefaults;
