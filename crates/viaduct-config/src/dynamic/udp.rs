use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::WeightedService;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UdpConfig {
    pub routers: BTreeMap<String, UdpRouter>,
    pub services: BTreeMap<String, UdpService>,
}

impl UdpConfig {
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty() && self.services.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UdpRouter {
    pub entry_points: Vec<String>,
    pub service: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UdpService {
    pub load_balancer: Option<UdpLoadBalancer>,
    pub weighted: Option<UdpWeighted>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UdpLoadBalancer {
    pub servers: Vec<UdpServer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UdpServer {
    pub address: String,
    pub port: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UdpWeighted {
    pub services: Vec<WeightedService>,
}
