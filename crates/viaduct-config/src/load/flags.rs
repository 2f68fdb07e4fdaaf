//! Command-line flags: `--key=value`, `--key value` and bare `--key` (meaning `true`).

use crate::{ConfigError, Origin};

/// One flag as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The key without dashes (`entryPoints.web.address`).
    pub key: String,
    pub value: String,
    /// The flag as written, for messages.
    pub written: String,
}

/// Splits `args` into flags. A flag without `=` takes the next argument as its value unless
/// that argument starts with `-` (so a negative value needs `=`); with no value it is a bare
/// boolean or section switch (`--providers.docker`) and gets `"true"`.
pub fn parse_flags(args: &[String]) -> Result<Vec<Flag>, ConfigError> {
    let mut flags = Vec::new();
    let mut index = 0;
    while index < args.len() {
        let arg = &args[index];
        let body = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|body| !body.is_empty() && !body.starts_with('='))
            .ok_or_else(|| ConfigError {
                origin: Origin::Flags,
                key: String::new(),
                line: None,
                message: format!("unexpected argument `{arg}`: flags are written `--key=value`"),
            })?;
        let flag = match body.split_once('=') {
            Some((key, value)) => Flag {
                key: key.to_owned(),
                value: value.to_owned(),
                written: arg.clone(),
            },
            None => match args.get(index + 1).filter(|next| !next.starts_with('-')) {
                Some(next) => {
                    index += 1;
                    Flag {
                        key: body.to_owned(),
                        value: next.clone(),
                        written: format!("{arg} {next}"),
                    }
                }
                None => Flag {
                    key: body.to_owned(),
                    value: "true".into(),
                    written: arg.clone(),
                },
            },
        };
        flags.push(flag);
        index += 1;
    }
    Ok(flags)
}
