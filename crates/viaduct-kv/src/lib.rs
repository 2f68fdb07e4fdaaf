//! Key-value providers: dynamic configuration stored one key per leaf under a root key, as
//! Traefik's Consul, etcd, Redis and ZooKeeper providers read it ([`layout`]), and the Redis
//! provider that reads and watches it ([`RedisProvider`]).

pub mod layout;
mod redis;

pub use layout::{decode_layout, LayoutError};
pub use redis::{KvError, RedisProvider, REDIS_PROVIDER_NAME};
