//! Key-value providers: dynamic configuration stored one key per leaf under a root key, as
//! Traefik's Consul, etcd, Redis and ZooKeeper providers read it ([`layout`]), read and
//! followed by one loop for every store ([`store`]): Redis ([`RedisProvider`]), etcd
//! ([`EtcdProvider`]) and Consul ([`ConsulProvider`]).

mod consul;
mod etcd;
mod http;
pub mod layout;
mod redis;
mod store;

pub use consul::{ConsulProvider, CONSUL_PROVIDER_NAME};
pub use etcd::{EtcdProvider, ETCD_PROVIDER_NAME};
pub use layout::{decode_layout, LayoutError};
pub use redis::{RedisProvider, REDIS_PROVIDER_NAME};
pub use store::KvError;
