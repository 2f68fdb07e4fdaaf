//! `viaduct`: the binary. Parses the command line, loads the static configuration, wires
//! providers → aggregator → compiler → entry points, and handles signals.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("version") => {
            println!("viaduct {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => {
            println!("usage: viaduct [--configFile=PATH] [version|check|healthcheck]");
            Ok(())
        }
    }
}
