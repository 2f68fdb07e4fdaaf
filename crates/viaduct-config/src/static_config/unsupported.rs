//! Which options the user set whose feature Viaduct does not build yet.

use super::{EntryPoint, StaticConfig};
use crate::GoDuration;

impl StaticConfig {
    /// The dotted key of every section or option that is set but not built yet, in document
    /// order of sections, so the binary can warn once per key.
    ///
    /// Built: `entryPoints.<n>.{address, asDefault, forwardedHeaders, transport.respondingTimeouts,
    /// transport.lifeCycle, http.middlewares, http.maxHeaderBytes, http.sanitizePath,
    /// http.encodeQuerySemicolons}`, `providers.{providersThrottleDuration, file, docker, http, redis, etcd, consul, kubernetesIngress}` (without docker's `username`, `password`,
    /// `tls.insecureSkipVerify`, nor redis's `tls` and `sentinel`),
    /// `log.{level, format, filePath, noColor}`, `serversTransport` (without `spiffe`),
    /// `core.defaultRuleSyntax: v3`, `certificatesResolvers.<n>.acme`. `global.checkNewVersion`/`sendAnonymousUsage` set to
    /// false match Viaduct's behaviour and are not reported.
    pub fn unsupported_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut flag = |set: bool, key: &str| {
            if set {
                keys.push(key.to_owned());
            }
        };
        flag(
            self.global.check_new_version == Some(true),
            "global.checkNewVersion",
        );
        flag(
            self.global.send_anonymous_usage == Some(true),
            "global.sendAnonymousUsage",
        );
        flag(
            self.global.not_append_x_forwarded_for,
            "global.notAppendXForwardedFor",
        );
        flag(
            !self.core.default_rule_syntax.eq_ignore_ascii_case("v3"),
            "core.defaultRuleSyntax",
        );
        flag(
            self.servers_transport.spiffe.is_some(),
            "serversTransport.spiffe",
        );
        flag(
            self.tcp_servers_transport
                .as_ref()
                .is_some_and(|t| t.tls.is_some()),
            "tcpServersTransport.tls",
        );
        for (name, entry_point) in &self.entry_points {
            keys.extend(
                unsupported_entry_point_options(entry_point)
                    .into_iter()
                    .map(|option| format!("entryPoints.{name}.{option}")),
            );
        }
        keys.extend(self.unsupported_provider_keys());
        keys.extend(self.unsupported_observability_keys());
        keys.extend(
            self.certificates_resolvers
                .iter()
                .filter(|(_, resolver)| resolver.tailscale.is_some())
                .map(|(name, _)| format!("certificatesResolvers.{name}.tailscale")),
        );
        if let Some(experimental) = &self.experimental {
            let mut flag = |set: bool, key: &str| {
                if set {
                    keys.push(format!("experimental.{key}"));
                }
            };
            flag(!experimental.plugins.is_empty(), "plugins");
            flag(!experimental.local_plugins.is_empty(), "localPlugins");
            flag(experimental.abort_on_plugin_failure, "abortOnPluginFailure");
            flag(experimental.fast_proxy.is_some(), "fastProxy");
            flag(experimental.otlp_logs, "otlpLogs");
            flag(experimental.knative, "knative");
            flag(
                experimental.kubernetes_ingress_nginx,
                "kubernetesIngressNGINX",
            );
            flag(experimental.kubernetes_gateway, "kubernetesGateway");
        }
        if self.spiffe.is_some() {
            keys.push("spiffe".into());
        }
        if self.ocsp.is_some() {
            keys.push("ocsp".into());
        }
        keys
    }

    fn unsupported_provider_keys(&self) -> Vec<String> {
        let providers = &self.providers;
        let mut keys: Vec<String> = providers
            .provider_blocks()
            .into_iter()
            .filter(|(name, set)| {
                *set && ![
                    "file",
                    "docker",
                    "http",
                    "redis",
                    "etcd",
                    "consul",
                    "kubernetesIngress",
                ]
                .contains(name)
            })
            .map(|(name, _)| format!("providers.{name}"))
            .collect();
        if let Some(docker) = &providers.docker {
            let set = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
            for (unbuilt, key) in [
                (set(&docker.username), "providers.docker.username"),
                (set(&docker.password), "providers.docker.password"),
                (
                    docker.tls.as_ref().is_some_and(|t| t.insecure_skip_verify),
                    "providers.docker.tls.insecureSkipVerify",
                ),
            ] {
                if unbuilt {
                    keys.push(key.into());
                }
            }
        }
        if let Some(consul) = &providers.consul {
            if !consul.namespace.is_empty() || !consul.namespaces.is_empty() {
                keys.push("providers.consul.namespaces".to_owned());
            }
        }
        if let Some(redis) = &providers.redis {
            for (unbuilt, key) in [
                (redis.tls.is_some(), "providers.redis.tls"),
                (redis.sentinel.is_some(), "providers.redis.sentinel"),
            ] {
                if unbuilt {
                    keys.push(key.into());
                }
            }
        }
        if let Some(ingress) = &providers.kubernetes_ingress {
            for (unbuilt, key) in [
                (
                    ingress.ingress_endpoint.is_some(),
                    "providers.kubernetesIngress.ingressEndpoint",
                ),
                (
                    ingress.native_lb_by_default,
                    "providers.kubernetesIngress.nativeLBByDefault",
                ),
                (
                    ingress.strict_prefix_matching,
                    "providers.kubernetesIngress.strictPrefixMatching",
                ),
                (
                    ingress.report_node_internal_ips,
                    "providers.kubernetesIngress.reportNodeInternalIPs",
                ),
            ] {
                if unbuilt {
                    keys.push(key.into());
                }
            }
        }
        if !providers.precedence.is_empty() {
            keys.push("providers.precedence".into());
        }
        keys
    }

    fn unsupported_observability_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let log = &self.log;
        for (set, key) in [
            (log.max_size.is_some(), "log.maxSize"),
            (log.max_age.is_some(), "log.maxAge"),
            (log.max_backups.is_some(), "log.maxBackups"),
            (log.compress.is_some(), "log.compress"),
            (log.otlp.is_some(), "log.otlp"),
            (self.api.as_ref().is_some_and(|a| a.debug), "api.debug"),
            (self.host_resolver.is_some(), "hostResolver"),
        ] {
            if set {
                keys.push(key.to_owned());
            }
        }
        keys
    }
}

/// The options of one entry point that are set but not built, relative to the entry point.
fn unsupported_entry_point_options(entry_point: &EntryPoint) -> Vec<&'static str> {
    let http = &entry_point.http;
    let transport = &entry_point.transport;
    [
        (entry_point.reuse_port, "reusePort"),
        (entry_point.allow_acme_by_pass, "allowACMEByPass"),
        (
            transport.keep_alive_max_requests != 0,
            "transport.keepAliveMaxRequests",
        ),
        (
            transport.keep_alive_max_time != GoDuration::ZERO,
            "transport.keepAliveMaxTime",
        ),
        (http.encoded_characters.is_some(), "http.encodedCharacters"),
        (
            http.underscore_headers_strategy.is_some(),
            "http.underscoreHeadersStrategy",
        ),
        (entry_point.http2.is_some(), "http2"),
        (entry_point.http3.is_some(), "http3"),
        (entry_point.observability.is_some(), "observability"),
    ]
    .into_iter()
    .filter_map(|(set, option)| set.then_some(option))
    .collect()
}
