//! The command line: a sub-command, or Traefik's flags.

pub const USAGE: &str = "\
viaduct — a reverse proxy and load balancer that reads Traefik v3 configuration

Usage:
  viaduct [--configFile=PATH] [--<static.option>=<value> ...]   run the proxy
  viaduct check [--configFile=PATH]    validate static and file-provider configuration, then exit
  viaduct version                      print the version
  viaduct healthcheck                  check a running instance (needs ping)
  viaduct --help                       this text

Static configuration is read, like Traefik's, from the first source found:
  1. a file: --configFile=PATH, or traefik.yml|yaml|toml (also viaduct.yml|yaml|toml) in
     /etc/traefik/, $XDG_CONFIG_HOME/, $HOME/.config/ or the working directory;
  2. flags: --entryPoints.web.address=:80 --providers.file.directory=/etc/viaduct/dynamic;
  3. environment: TRAEFIK_ENTRYPOINTS_WEB_ADDRESS=:80 ...
With none of them, Viaduct serves a demo page on :8080.

Environment:
  VIADUCT_WORKERS=N   worker threads (default: one per CPU core)
";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Vec<String>),
    Check(Vec<String>),
    Healthcheck(Vec<String>),
    Version,
    Help,
}

pub fn parse(mut args: Vec<String>) -> Command {
    if args
        .iter()
        .any(|a| a == "--help" || a == "-h" || a == "help")
    {
        return Command::Help;
    }
    match args.first().map(String::as_str) {
        Some("version") | Some("--version") => Command::Version,
        Some("check") => Command::Check(args.split_off(1)),
        Some("healthcheck") => Command::Healthcheck(args.split_off(1)),
        _ => Command::Run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn commands() {
        assert_eq!(parse(v(&["version"])), Command::Version);
        assert_eq!(parse(v(&["--help"])), Command::Help);
        assert_eq!(
            parse(v(&["check", "--configFile=x"])),
            Command::Check(v(&["--configFile=x"]))
        );
        assert_eq!(
            parse(v(&["--configFile=x"])),
            Command::Run(v(&["--configFile=x"]))
        );
        assert_eq!(parse(v(&[])), Command::Run(vec![]));
    }
}
