//! The `defaultRule` template: Go's `text/template` with sprig and `normalize`, as Traefik
//! renders it, over the model Traefik gives it (`.Name`, `.ContainerName`, `.Labels`).

use std::collections::BTreeMap;

use viaduct_template::{Template, Value};

pub use viaduct_template::normalize;

/// A parsed `defaultRule`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTemplate {
    template: Template,
}

/// What a template is rendered with for one container.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    /// The service name (compose `service-project`, or the container name), normalized.
    pub name: &'a str,
    pub container_name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("defaultRule {template:?}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

impl RuleTemplate {
    /// Parses the template; a syntax error or an unknown function is reported when the
    /// provider starts, not when a container appears.
    pub fn parse(template: &str) -> Result<RuleTemplate, TemplateError> {
        let fail = |line: usize, message: String| TemplateError {
            template: template.to_owned(),
            reason: format!("line {line}: {message}"),
        };
        let parsed = RuleTemplate {
            template: Template::parse("defaultRule", template)
                .map_err(|e| fail(e.line, e.message))?,
        };
        // A field the model does not have (`.Nope`) fails for every container alike: render once
        // with an empty container so that it is refused at start. Other errors (`required` of an
        // absent label) depend on the container and are reported with it.
        let empty = BTreeMap::new();
        let sample = TemplateData {
            name: "",
            container_name: "",
            labels: &empty,
        };
        if let Err(e) = parsed.template.render(&sample.model()) {
            if e.message.starts_with("can't evaluate field") {
                return Err(fail(e.line, e.message));
            }
        }
        Ok(parsed)
    }

    /// The rule for one container. A field that does not exist (`.Image`) is an error here,
    /// as it is for Go's struct; a label that does not exist is empty.
    pub fn render(&self, data: &TemplateData<'_>) -> Result<String, String> {
        self.template.render(&data.model()).map_err(|e| e.message)
    }
}

impl TemplateData<'_> {
    /// Traefik's model: a struct of `Name`, `ContainerName` and `Labels` (a `map[string]string`).
    fn model(&self) -> Value {
        Value::Record(BTreeMap::from([
            ("Name".to_string(), Value::from(self.name)),
            (
                "ContainerName".to_string(),
                Value::from(self.container_name),
            ),
            ("Labels".to_string(), Value::StringMap(self.labels.clone())),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str) -> Result<String, String> {
        let labels: BTreeMap<String, String> = [("app.domain", "example.org"), ("tier", "Web")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let data = TemplateData {
            name: "web-shop",
            container_name: "shop_web_1",
            labels: &labels,
        };
        RuleTemplate::parse(template)
            .map_err(|e| e.reason)?
            .render(&data)
    }

    #[test]
    fn traefik_default_and_common_forms() {
        assert_eq!(
            render("Host(`{{ normalize .Name }}`)").unwrap(),
            "Host(`web-shop`)"
        );
        assert_eq!(
            render("Host(`{{ .ContainerName }}.{{ index .Labels \"app.domain\" }}`)").unwrap(),
            "Host(`shop_web_1.example.org`)"
        );
        assert_eq!(
            render("Host(`{{ normalize .ContainerName }}.local`)").unwrap(),
            "Host(`shop-web-1.local`)"
        );
        assert_eq!(render("{{ .Labels.tier | lower }}").unwrap(), "web");
        assert_eq!(
            render("{{ normalize (index .Labels `missing`) }}x").unwrap(),
            "x"
        );
        assert_eq!(render("a {{- .Name -}} b").unwrap(), "aweb-shopb");
        assert_eq!(render("PathPrefix(`/`)").unwrap(), "PathPrefix(`/`)");
    }

    #[test]
    fn the_whole_template_language_and_sprig() {
        assert_eq!(
            render("{{ if .Labels.tier }}Host(`{{ printf \"%s.%s\" .Name (lower .Labels.tier) }}`){{ end }}")
                .unwrap(),
            "Host(`web-shop.web`)"
        );
        assert_eq!(
            render("Host(`{{ trimPrefix \"shop_\" .ContainerName }}`)").unwrap(),
            "Host(`web_1`)"
        );
    }

    #[test]
    fn mistakes_are_errors() {
        for (template, reason) in [
            ("Host(`{{ .Name `)", "unclosed action"),
            ("{{ }}", "missing value for command"),
            ("{{ nope .Name }}", "function \"nope\" not defined"),
        ] {
            let err = RuleTemplate::parse(template).unwrap_err();
            assert!(err.reason.contains(reason), "{template}: {err}");
        }
        let err = RuleTemplate::parse("Host(`{{ .Image }}`)").unwrap_err();
        assert!(err.reason.contains("can't evaluate field Image"), "{err}");
        // Depends on the container: accepted at start, refused for a container without it.
        let needs_label = "{{ required \"label domain\" .Labels.domain }}";
        assert!(RuleTemplate::parse(needs_label).is_ok());
        assert_eq!(
            render(needs_label).unwrap_err(),
            "error calling required: label domain"
        );
        assert!(render("{{ index .Name \"x\" }}").is_err());
    }

    #[test]
    fn normalize_matches_traefik() {
        assert_eq!(normalize("/my_app--1."), "my-app-1");
        assert_eq!(normalize("web_shop"), "web-shop");
    }
}
