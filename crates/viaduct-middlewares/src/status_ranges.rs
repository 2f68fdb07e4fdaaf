//! Status code lists as Traefik writes them: `["500-599", "404,418"]`.

/// Inclusive ranges of status codes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatusRanges(Vec<(u16, u16)>);

impl StatusRanges {
    /// Parses each entry as comma-separated codes or `from-to` ranges. `option` names the
    /// option in errors.
    pub fn parse(entries: &[String], option: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for entry in entries {
            for block in entry.split(',') {
                let block = block.trim();
                let (from, to) = block.split_once('-').unwrap_or((block, block));
                let parse = |text: &str| {
                    text.trim().parse::<u16>().map_err(|_| {
                        format!(
                            "option {option}: {block:?} is not a status code or a range of them"
                        )
                    })
                };
                let (from, to) = (parse(from)?, parse(to)?);
                if from > to {
                    return Err(format!(
                        "option {option}: range {block:?} ends before it starts"
                    ));
                }
                ranges.push((from, to));
            }
        }
        Ok(StatusRanges(ranges))
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|&(from, to)| (from..=to).contains(&status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_ranges() {
        let ranges = StatusRanges::parse(&["500-599".into(), "404, 418".into()], "status").unwrap();
        assert!(ranges.contains(500) && ranges.contains(599) && ranges.contains(418));
        assert!(!ranges.contains(499) && !ranges.contains(600) && !ranges.contains(200));
        assert!(StatusRanges::parse(&["5xx".into()], "status").is_err());
        assert!(StatusRanges::parse(&["599-500".into()], "status").is_err());
    }
}
