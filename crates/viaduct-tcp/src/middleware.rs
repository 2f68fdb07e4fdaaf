//! TCP middlewares: `ipAllowList` (`ipWhiteList`) and `inFlightConn`. Both decide once, when
//! a connection is routed; a refused connection is closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use serde::Deserialize;
use viaduct_config::{decode_value, Origin};

/// One compiled `tcp.middlewares.<name>`.
#[derive(Debug)]
pub enum TcpMiddleware {
    IpAllowList(Vec<IpNet>),
    InFlightConn(Arc<InFlightConn>),
}

/// Open connections per client IP, shared by every router using the middleware and carried
/// across reloads while its `amount` is unchanged.
#[derive(Debug)]
pub struct InFlightConn {
    amount: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("client {0} is not in the ipAllowList source range")]
    NotAllowed(IpAddr),
    #[error("client {0} already has {1} connections open (inFlightConn)")]
    TooManyConnections(IpAddr, usize),
}

/// Counts one connection under `inFlightConn` until dropped.
#[derive(Debug)]
pub struct InFlightGuard {
    limiter: Arc<InFlightConn>,
    client: IpAddr,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AllowListOptions {
    #[serde(default)]
    source_range: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InFlightOptions {
    #[serde(default)]
    amount: i64,
}

impl TcpMiddleware {
    /// Compiles a middleware definition; `previous` (the same name in the running
    /// configuration) lends its connection counts.
    pub fn from_config(
        config: &viaduct_config::TcpMiddleware,
        previous: Option<&TcpMiddleware>,
    ) -> Result<TcpMiddleware, String> {
        let kinds = [
            config.ip_allow_list.as_ref(),
            config.ip_white_list.as_ref(),
            config.in_flight_conn.as_ref(),
        ];
        if kinds.iter().flatten().count() != 1 {
            return Err("a TCP middleware must define exactly one of ipAllowList, ipWhiteList, inFlightConn".into());
        }
        if let Some(options) = config
            .ip_allow_list
            .as_ref()
            .or(config.ip_white_list.as_ref())
        {
            let options: AllowListOptions = decode(options)?;
            if options.source_range.is_empty() {
                return Err("ipAllowList: sourceRange is empty".into());
            }
            let ranges = options
                .source_range
                .iter()
                .map(|r| {
                    parse_range(r)
                        .ok_or_else(|| format!("ipAllowList: invalid sourceRange entry {r:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(TcpMiddleware::IpAllowList(ranges));
        }
        let options: InFlightOptions = decode(
            config
                .in_flight_conn
                .as_ref()
                .unwrap_or(&serde_json::Value::Null),
        )?;
        let amount = usize::try_from(options.amount)
            .ok()
            .filter(|a| *a > 0)
            .ok_or_else(|| {
                format!(
                    "inFlightConn: amount must be positive, not {}",
                    options.amount
                )
            })?;
        if let Some(TcpMiddleware::InFlightConn(old)) = previous {
            if old.amount == amount {
                return Ok(TcpMiddleware::InFlightConn(old.clone()));
            }
        }
        Ok(TcpMiddleware::InFlightConn(Arc::new(InFlightConn {
            amount,
            open: Mutex::new(HashMap::new()),
        })))
    }
}

/// Runs `middlewares` in order for a connection from `client`; the guards keep the connection
/// counted and must live as long as it.
pub fn admit(
    middlewares: &[Arc<TcpMiddleware>],
    client: IpAddr,
) -> Result<Vec<InFlightGuard>, Refusal> {
    let client = client.to_canonical();
    let mut guards = Vec::new();
    for middleware in middlewares {
        match middleware.as_ref() {
            TcpMiddleware::IpAllowList(ranges) => {
                if !ranges.iter().any(|net| net.contains(&client)) {
                    return Err(Refusal::NotAllowed(client));
                }
            }
            TcpMiddleware::InFlightConn(limiter) => guards.push(limiter.enter(client)?),
        }
    }
    Ok(guards)
}

impl InFlightConn {
    fn enter(self: &Arc<Self>, client: IpAddr) -> Result<InFlightGuard, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(client).or_default();
        if *count >= self.amount {
            return Err(Refusal::TooManyConnections(client, *count));
        }
        *count += 1;
        Ok(InFlightGuard {
            limiter: self.clone(),
            client,
        })
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<T, String> {
    let value = match value {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        other => other.clone(),
    };
    decode_value(value, Origin::Inline("TCP middleware options")).map_err(|e| e.to_string())
}

fn parse_range(value: &str) -> Option<IpNet> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .ok()
        .or_else(|| value.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(json: &str) -> viaduct_config::TcpMiddleware {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn allow_list() {
        let m = TcpMiddleware::from_config(
            &config(r#"{"ipAllowList":{"sourcerange":["10.0.0.0/8","192.168.1.7"]}}"#),
            None,
        )
        .unwrap();
        let m = [Arc::new(m)];
        assert!(admit(&m, "10.2.3.4".parse().unwrap()).is_ok());
        assert!(admit(&m, "::ffff:192.168.1.7".parse().unwrap()).is_ok());
        assert!(admit(&m, "192.168.1.8".parse().unwrap()).is_err());
        assert!(TcpMiddleware::from_config(
            &config(r#"{"ipAllowList":{"sourceRange":["x"]}}"#),
            None
        )
        .is_err());
    }

    #[test]
    fn in_flight() {
        let m =
            TcpMiddleware::from_config(&config(r#"{"inFlightConn":{"amount":2}}"#), None).unwrap();
        let m = [Arc::new(m)];
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = admit(&m, a).unwrap();
        let _second = admit(&m, a).unwrap();
        assert!(admit(&m, a).is_err());
        assert!(admit(&m, b).is_ok());
        drop(first);
        assert!(admit(&m, a).is_ok());
    }
}
