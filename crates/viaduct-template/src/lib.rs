//! Go's `text/template`, the part configuration files are written in.
//!
//! Traefik renders every dynamic configuration file as a Go template before parsing it, with
//! the sprig function library plus `normalize` and `split`; users write `{{ env "DOMAIN" }}` or
//! generate routers with `{{ range }}`. This crate reads the same templates:
//!
//! - actions with `{{-`/`-}}` trimming and `{{/* comments */}}`;
//! - pipelines with `|`, parentheses, variables (`$x := …`, `$x = …`, `$`), fields (`.a.b`),
//!   string, raw string, character, number, boolean and `nil` literals;
//! - `if`/`else if`/`else`, `with`/`else with`, `range` (lists, maps in key order, integers) with
//!   `else`, `break` and `continue`;
//! - Go's built-in functions, Traefik's `normalize` and `split`, and the sprig functions
//!   configuration files use (`NAMES` in `funcs/mod.rs`; `docs/providers.md` lists them).
//!
//! `define`, `template` and `block`, and calling methods, are refused with an error naming the
//! line, as is any function not in the list: a template that parses here renders as Go would.
//! Output is bounded (64 MiB, 100,000 iterations per `range`) so a template cannot exhaust
//! memory.

mod exec;
mod funcs;
mod lex;
mod parse;
mod printf;
mod value;

pub use funcs::normalize;
pub use value::Value;

/// A parsed template, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    name: String,
    nodes: Vec<parse::Node>,
}

/// A template that does not parse, or fails while rendering. Displayed as Go displays it:
/// `template: routes.yml:3: function "foo" not defined`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {name}:{line}: {message}")]
pub struct Error {
    /// The template's name (for configuration files, the file's name).
    pub name: String,
    /// The line of the action at fault, from 1.
    pub line: usize,
    pub message: String,
}

impl Template {
    /// Parses `text`; `name` names the template in errors.
    pub fn parse(name: &str, text: &str) -> Result<Template, Error> {
        let error = |line: usize, message: String| Error {
            name: name.to_string(),
            line,
            message,
        };
        let chunks = lex::split(text).map_err(|e| error(e.line, e.message))?;
        let nodes = parse::parse(chunks).map_err(|e| error(e.line, e.message))?;
        Ok(Template {
            name: name.to_string(),
            nodes,
        })
    }

    /// Renders the template with `data` as `.` and `$`.
    pub fn render(&self, data: &Value) -> Result<String, Error> {
        exec::Exec::run(&self.nodes, data).map_err(|e| Error {
            name: self.name.clone(),
            line: e.line,
            message: e.message,
        })
    }
}

/// Parses and renders `text` in one step.
pub fn render(name: &str, text: &str, data: &Value) -> Result<String, Error> {
    Template::parse(name, text)?.render(data)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn run(text: &str) -> String {
        render("t", text, &Value::Nil).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn fails(text: &str) -> String {
        render("t.yml", text, &Value::Nil)
            .expect_err(text)
            .to_string()
    }

    #[test]
    fn text_without_actions_is_unchanged() {
        let yaml = "http:\n  routers:\n    a:\n      rule: \"Host(`a`) && Path(`/{id:[0-9]+}`)\"\n";
        assert_eq!(run(yaml), yaml);
    }

    #[test]
    fn environment_and_defaults() {
        std::env::set_var("VIADUCT_TEMPLATE_TEST_DOMAIN", "example.com");
        assert_eq!(
            run(r#"Host(`{{ env "VIADUCT_TEMPLATE_TEST_DOMAIN" }}`)"#),
            "Host(`example.com`)"
        );
        assert_eq!(
            run(r#"{{ env "VIADUCT_TEMPLATE_TEST_UNSET" | default "fallback" }}"#),
            "fallback"
        );
        assert_eq!(
            run(r#"{{ default "d" "given" }}|{{ default "d" }}"#),
            "given|d"
        );
        assert_eq!(
            run(
                "{{ expandenv \"${VIADUCT_TEMPLATE_TEST_DOMAIN}/$VIADUCT_TEMPLATE_TEST_DOMAIN\" }}"
            ),
            "example.com/example.com"
        );
    }

    #[test]
    fn ranges_generate_routers() {
        let text = "{{ range $i, $e := until 3 }}\n  r{{ $i }}:\n    rule: \"Host(`h{{ add1 $e }}.com`)\"\n{{- end }}\n";
        assert_eq!(
            run(text),
            "\n  r0:\n    rule: \"Host(`h1.com`)\"\n  r1:\n    rule: \"Host(`h2.com`)\"\n  r2:\n    rule: \"Host(`h3.com`)\"\n"
        );
        assert_eq!(
            run("{{ range list \"a\" \"b\" }}[{{ . }}]{{ end }}"),
            "[a][b]"
        );
        assert_eq!(
            run("{{ range $k, $v := dict \"b\" 2 \"a\" 1 }}{{ $k }}={{ $v }};{{ end }}"),
            "a=1;b=2;"
        );
        assert_eq!(run("{{ range 3 }}{{ . }}{{ end }}"), "012");
        assert_eq!(run("{{ range list }}x{{ else }}empty{{ end }}"), "empty");
        assert_eq!(
            run("{{ range until 10 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if gt . 3 }}{{ break }}{{ end }}{{ . }}{{ end }}"),
            "013"
        );
    }

    #[test]
    fn conditionals_and_variables() {
        assert_eq!(
            run("{{ if 0 }}a{{ else if \"\" }}b{{ else }}c{{ end }}"),
            "c"
        );
        assert_eq!(run("{{ if and 1 (not false) }}yes{{ end }}"), "yes");
        assert_eq!(run("{{ or 0 \"\" \"x\" }}|{{ and 1 0 }}"), "x|0");
        assert_eq!(run("{{ with $x := \"v\" }}{{ . }}{{ $x }}{{ end }}"), "vv");
        assert_eq!(
            run("{{ with \"\" }}no{{ else with 5 }}{{ . }}{{ end }}"),
            "5"
        );
        assert_eq!(
            run("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
            "2"
        );
        assert_eq!(
            run("{{ $d := dict \"k\" (list 1 2) }}{{ index $d \"k\" 1 }}{{ $d.k }}"),
            "2[1 2]"
        );
        assert_eq!(run("{{ (dict \"a\" (dict \"b\" \"c\")).a.b }}"), "c");
        assert_eq!(run("{{ (dict).missing }}"), "<no value>");
    }

    #[test]
    fn data_is_dot_and_dollar_with_go_struct_and_string_map_semantics() {
        let data = Value::Record(BTreeMap::from([
            ("Name".to_string(), Value::from("web-1")),
            (
                "Labels".to_string(),
                Value::StringMap(BTreeMap::from([("tier".to_string(), "front".to_string())])),
            ),
        ]));
        let render_data = |text: &str| render("t", text, &data);
        assert_eq!(
            render_data(
                "{{ normalize .Name }}.{{ .Labels.tier }}{{ range list 1 }}{{ $.Name }}{{ end }}"
            )
            .unwrap(),
            "web-1.frontweb-1"
        );
        // A missing label is empty, as in Go's map[string]string; a missing field is a mistake.
        assert_eq!(
            render_data("[{{ .Labels.nope }}][{{ index .Labels \"nope\" }}]").unwrap(),
            "[][]"
        );
        assert_eq!(
            render_data("{{ .Image }}").unwrap_err().message,
            "can't evaluate field Image in type struct"
        );
        assert_eq!(
            render_data("{{ range $k, $v := .Labels }}{{ $k }}={{ $v }}{{ end }}").unwrap(),
            "tier=front"
        );
    }

    #[test]
    fn strings_and_numbers() {
        assert_eq!(run("{{ printf \"%s:%d\" \"a\" 8080 }}"), "a:8080");
        assert_eq!(run("{{ \"a,b\" | split \",\" | len }}"), "1");
        assert_eq!(run("{{ split \"a,b\" \",\" | join \"-\" }}"), "a-b");
        assert_eq!(run("{{ splitList \",\" \"a,b,c\" | last }}"), "c");
        assert_eq!(
            run("{{ \"Hello World\" | lower | replace \" \" \"-\" | quote }}"),
            "\"hello-world\""
        );
        assert_eq!(
            run("{{ upper \"x\" }}{{ title \"a b\" }}{{ trimSuffix \".com\" \"a.com\" }}"),
            "XA Ba"
        );
        assert_eq!(run("{{ add 1 2 3 }} {{ sub 5 7 }} {{ mul 2 \"4\" }} {{ div 7 2 }} {{ mod 7 2 }} {{ max 1 9 3 }}"), "6 -2 8 3 1 9");
        assert_eq!(run("{{ seq 3 }}|{{ untilStep 0 10 4 }}"), "1 2 3|[0 4 8]");
        assert_eq!(run("{{ b64enc \"user:pass\" }}"), "dXNlcjpwYXNz");
        assert_eq!(
            run("{{ toJson (dict \"a\" (list 1 \"b\")) }}"),
            "{\"a\":[1,\"b\"]}"
        );
        assert_eq!(
            run("{{ (fromJson \"{\\\"p\\\":[80,443]}\").p }}"),
            "[80 443]"
        );
        assert_eq!(run("{{ nindent 2 \"a\\nb\" }}"), "\n  a\n  b");
        assert_eq!(
            run("{{ len \"abc\" }}{{ slice (list 1 2 3) 1 }}{{ ternary \"y\" \"n\" true }}"),
            "3[2 3]y"
        );
        assert_eq!(run("{{ normalize \"my_app.v2\" }}"), "my-app-v2");
        assert_eq!(run("{{ print 1 2 \"a\" 3 }}"), "1 2a3");
        assert_eq!(
            run("{{ lt 1 2.5 }} {{ ge \"b\" \"a\" }} {{ eq 1 2 1 }} {{ ne \"a\" \"a\" }}"),
            "true true true false"
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        assert_eq!(
            fails("a\n{{ nope 1 }}"),
            "template: t.yml:2: function \"nope\" not defined"
        );
        assert_eq!(
            fails("{{ if true }}x"),
            "template: t.yml:1: unexpected EOF in if"
        );
        assert_eq!(
            fails("x\n\n{{ end }}"),
            "template: t.yml:3: unexpected {{end}}"
        );
        assert_eq!(
            fails("{{ break }}"),
            "template: t.yml:1: {{break}} outside {{range}}"
        );
        assert_eq!(
            fails("{{ $y }}"),
            "template: t.yml:1: undefined variable: $y"
        );
        assert_eq!(
            fails("{{ .Name }}"),
            "template: t.yml:1: can't evaluate field Name in type nil"
        );
        assert_eq!(
            fails("{{ div 1 0 }}"),
            "template: t.yml:1: error calling div: integer divide by zero"
        );
        assert_eq!(
            fails("{{ required \"set DOMAIN\" (env \"VIADUCT_TEMPLATE_TEST_UNSET\") }}"),
            "template: t.yml:1: error calling required: set DOMAIN"
        );
        assert_eq!(
            fails("{{ define \"x\" }}{{ end }}"),
            "template: t.yml:1: {{define}} is not supported in configuration templates"
        );
        assert_eq!(
            fails("{{ \"a\" 1 }}"),
            "template: t.yml:1: can't give argument to non-function a"
        );
        assert!(fails("{{ range until 200000 }}{{ end }}").contains("at most 100000"));
    }
}
