//! Container labels → the container's own dynamic configuration and provider options.
//!
//! The `traefik.http|tcp|udp|tls.*` labels go through the shared flat-key decoder. A label
//! that does not decode drops only the object it belongs to (`http.routers.<name>`), so the
//! container's other routers, services and middlewares still apply.

use std::collections::BTreeMap;

use viaduct_config::{decode_labels, DynamicConfig};

use crate::{BuildError, Container};

/// The label prefix every Traefik label starts with.
const ROOT: &str = "traefik";

/// What a container's provider labels say.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ContainerLabels {
    /// `traefik.enable`, when set.
    pub enable: Option<bool>,
    /// `traefik.docker.network`, when set.
    pub network: Option<String>,
    /// `traefik.docker.allownonrunning`.
    pub allow_non_running: bool,
}

/// Reads the provider labels (`traefik.enable`, `traefik.docker.*`); a bad one makes the
/// whole container unusable.
pub(crate) fn read(container: &Container) -> Result<ContainerLabels, BuildError> {
    let mut read = ContainerLabels::default();
    for (label, value) in &container.labels {
        let key = label.to_ascii_lowercase();
        let bad = |reason: &str| BuildError::Label {
            container: container.name.clone(),
            label: label.clone(),
            reason: reason.to_owned(),
        };
        if key == "traefik.enable" {
            read.enable = Some(parse_go_bool(value).ok_or_else(|| bad("expected a boolean"))?);
        } else if key == "traefik.docker.network" {
            read.network = Some(value.clone()).filter(|v| !v.is_empty());
        } else if key == "traefik.docker.allownonrunning" {
            read.allow_non_running =
                parse_go_bool(value).ok_or_else(|| bad("expected a boolean"))?;
        }
    }
    Ok(read)
}

/// Decodes the configuration labels, dropping the objects whose labels are bad one at a time
/// (each with an error in `errors`).
pub(crate) fn decode(container: &Container, errors: &mut Vec<BuildError>) -> DynamicConfig {
    // Only Traefik's labels: another tool's oddly spelled key must not fail the decoding.
    let mut labels: BTreeMap<String, String> = container
        .labels
        .iter()
        .filter(|(label, _)| is_configuration_label(label))
        .map(|(label, value)| (label.clone(), value.clone()))
        .collect();
    // Each round removes at least one label, so this ends.
    loop {
        let error = match decode_labels(&labels, ROOT) {
            Ok(config) => return config,
            Err(error) => error,
        };
        let mut error_path = segments(&error.key);
        // Key syntax errors name the whole label, decoding errors the path under `traefik.`.
        if error_path
            .first()
            .is_some_and(|s| s.eq_ignore_ascii_case(ROOT))
        {
            error_path.remove(0);
        }
        let object: Vec<String> = error_path.iter().take(3).cloned().collect();
        let offending = labels
            .keys()
            .find(|label| under(label, &error_path))
            .or_else(|| labels.keys().find(|label| under(label, &object)))
            .cloned();
        let before = labels.len();
        if object.is_empty() {
            labels.retain(|label, _| !is_configuration_label(label));
        } else {
            labels.retain(|label, _| !under(label, &object));
        }
        errors.push(BuildError::Label {
            container: container.name.clone(),
            label: offending.unwrap_or_else(|| format!("{ROOT}.{}", error.key)),
            reason: format!(
                "{}; `{ROOT}.{}` is ignored",
                error.message,
                object.join(".")
            ),
        });
        if labels.len() == before {
            labels.retain(|label, _| !is_configuration_label(label));
            if labels.len() == before {
                return DynamicConfig::default();
            }
        }
    }
}

/// Whether the label's path (after `traefik.`) starts with `prefix`, ignoring case and the
/// `[0]`/`.0` spelling of indices.
fn under(label: &str, prefix: &[String]) -> bool {
    let path = segments(label);
    let Some((root, rest)) = path.split_first() else {
        return false;
    };
    root.eq_ignore_ascii_case(ROOT)
        && rest.len() >= prefix.len()
        && rest
            .iter()
            .zip(prefix)
            .all(|(a, b)| a.eq_ignore_ascii_case(b) || is_server_alias(a, b))
}

/// Labels write the singular `server`, the decoder reports the list `servers`.
fn is_server_alias(label: &str, reported: &str) -> bool {
    label.eq_ignore_ascii_case("server") && reported.eq_ignore_ascii_case("servers")
}

fn is_configuration_label(label: &str) -> bool {
    let path = segments(label);
    path.len() > 1
        && path[0].eq_ignore_ascii_case(ROOT)
        && ["http", "tcp", "udp", "tls"]
            .iter()
            .any(|root| path[1].eq_ignore_ascii_case(root))
}

fn segments(key: &str) -> Vec<String> {
    key.split(['.', '[', ']'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(labels: &[(&str, &str)]) -> Container {
        Container {
            name: "app".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_bad_label_drops_only_its_object() {
        let mut errors = Vec::new();
        let config = decode(
            &container(&[
                ("traefik.http.routers.good.rule", "Host(`a`)"),
                ("traefik.http.routers.bad.rule", "Host(`b`)"),
                ("traefik.http.routers.bad.priority", "high"),
                ("traefik.http.routers.Worse.rulez", "x"),
                ("traefik.http.services.s.loadbalancer.server.port", "80"),
            ]),
            &mut errors,
        );
        let http = config.http.unwrap();
        assert_eq!(http.routers.keys().collect::<Vec<_>>(), ["good"]);
        assert!(http.services.contains_key("s"));
        assert_eq!(errors.len(), 2, "{errors:?}");
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(text.iter().any(
            |t| t.contains("container app") && t.contains("traefik.http.routers.bad.priority")
        ));
        assert!(text
            .iter()
            .any(|t| t.contains("traefik.http.routers.Worse.rulez")));
    }

    #[test]
    fn a_bad_server_label_is_named() {
        let mut errors = Vec::new();
        let config = decode(
            &container(&[
                (
                    "traefik.http.services.s.loadbalancer.server.weight",
                    "heavy",
                ),
                ("traefik.http.routers.r.rule", "Host(`a`)"),
            ]),
            &mut errors,
        );
        assert!(config.http.unwrap().routers.contains_key("r"));
        assert!(
            errors[0]
                .to_string()
                .contains("traefik.http.services.s.loadbalancer.server.weight"),
            "{errors:?}"
        );
    }

    #[test]
    fn malformed_keys_drop_their_object_and_other_tools_labels_are_ignored() {
        let mut errors = Vec::new();
        let config = decode(
            &container(&[
                ("traefik.http.routers.a..rule", "Host(`a`)"),
                ("traefik.http.routers.b.rule", "Host(`b`)"),
                ("org.example.[odd", "x"),
            ]),
            &mut errors,
        );
        let routers = config.http.unwrap().routers;
        assert_eq!(routers.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0]
            .to_string()
            .contains("traefik.http.routers.a..rule"));
    }

    #[test]
    fn provider_labels() {
        let read = read(&container(&[
            ("traefik.enable", "true"),
            ("traefik.docker.network", "front"),
            ("traefik.docker.allownonrunning", "1"),
        ]))
        .unwrap();
        assert_eq!(read.enable, Some(true));
        assert_eq!(read.network.as_deref(), Some("front"));
        assert!(read.allow_non_running);
        let err = super::read(&container(&[("traefik.enable", "yes")])).unwrap_err();
        assert!(err.to_string().contains("traefik.enable"));
    }
}
