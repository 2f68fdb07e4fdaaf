use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::TestkitError;
use crate::ports::free_port;

/// Renders configuration templates. Placeholders are `{{…}}` with no inner spaces:
///
/// - `{{port:NAME}}` — a free loopback port, allocated on first use; the same NAME always gives
///   the same port for the life of the template (static and dynamic files share it).
/// - `{{addr:NAME}}` — `127.0.0.1:{{port:NAME}}`.
/// - `{{dynamic_file}}` — absolute path of the dynamic configuration file.
/// - `{{dir}}` — the temporary directory holding both files.
/// - `{{VAR}}` — any variable set with [`Template::set`] (e.g. a backend URL).
///
/// YAML itself never contains `{{`, so no escaping is needed. A `{{ … }}` with a space inside is
/// a Go template action, left for the proxy (which renders files as Go templates).
#[derive(Debug, Clone)]
pub struct Template {
    dir: PathBuf,
    dynamic_file: PathBuf,
    ports: BTreeMap<String, u16>,
    vars: BTreeMap<String, String>,
}

impl Template {
    pub fn new(dir: &Path, dynamic_file: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            dynamic_file: dynamic_file.to_path_buf(),
            ports: BTreeMap::new(),
            vars: BTreeMap::new(),
        }
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// The port bound to NAME, allocating it if this is its first mention.
    pub fn port(&mut self, name: &str) -> crate::Result<u16> {
        if let Some(port) = self.ports.get(name) {
            return Ok(*port);
        }
        let port = free_port()?;
        self.ports.insert(name.to_string(), port);
        Ok(port)
    }

    /// Every port allocated so far, by name.
    pub fn ports(&self) -> &BTreeMap<String, u16> {
        &self.ports
    }

    pub fn render(&mut self, text: &str) -> crate::Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut consumed = 0;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or(TestkitError::UnterminatedPlaceholder {
                    offset: consumed + start,
                })?;
            let placeholder = &after[..end];
            if placeholder.contains(char::is_whitespace) {
                // A Go template action (`{{ env "X" }}`), for the proxy's own template engine.
                out.push_str(&rest[start..start + 2 + end + 2]);
            } else {
                out.push_str(&self.resolve(placeholder)?);
            }
            consumed += start + 2 + end + 2;
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve(&mut self, placeholder: &str) -> crate::Result<String> {
        if let Some(name) = placeholder.strip_prefix("port:") {
            return Ok(self.port(name)?.to_string());
        }
        if let Some(name) = placeholder.strip_prefix("addr:") {
            return Ok(format!("127.0.0.1:{}", self.port(name)?));
        }
        match placeholder {
            "dynamic_file" => Ok(self.dynamic_file.display().to_string()),
            "dir" => Ok(self.dir.display().to_string()),
            other => {
                self.vars
                    .get(other)
                    .cloned()
                    .ok_or_else(|| TestkitError::UnknownPlaceholder {
                        placeholder: other.to_string(),
                    })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_ports_paths_and_vars_consistently() {
        let mut t = Template::new(Path::new("/tmp/x"), Path::new("/tmp/x/dyn.yml"));
        t.set("be", "http://127.0.0.1:1234");
        let a = t
            .render("a: {{addr:web}}\nb: {{port:web}}\nf: {{dynamic_file}}\nu: {{be}}")
            .unwrap();
        let port = t.port("web").unwrap();
        assert_eq!(
            a,
            format!("a: 127.0.0.1:{port}\nb: {port}\nf: /tmp/x/dyn.yml\nu: http://127.0.0.1:1234")
        );
    }

    #[test]
    fn rejects_unknown_and_unterminated_placeholders() {
        let mut t = Template::new(Path::new("/d"), Path::new("/d/f"));
        assert!(matches!(
            t.render("{{nope}}"),
            Err(TestkitError::UnknownPlaceholder { .. })
        ));
        assert!(matches!(
            t.render("x {{port:web"),
            Err(TestkitError::UnterminatedPlaceholder { offset: 2 })
        ));
    }
}
