//! Positions and values in the TOML files people write: a deserialization error taken
//! apart into file, line, column and field (so every error names what to fix), and humane
//! durations (`250ms`, `1m30s`). Shared by the directory loader and the relay's config.

use std::fmt;
use std::time::Duration;

/// A position in a text file, shown as `origin:line:column` (1-based) like compilers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file path or a name such as `<built-in demo>`.
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// Turns a byte offset into `text` into a line and column.
    pub fn from_offset(origin: &str, text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            origin: origin.to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// A toml deserialization error taken apart: location, field path and the bare message.
pub struct TomlError {
    /// Where in the text the error is.
    pub location: Location,
    /// The dotted path of the offending field, when it can be told.
    pub field: Option<String>,
    /// toml's message without its input excerpt.
    pub message: String,
}

impl TomlError {
    /// Takes `err`, raised while reading `text` (from `origin`), apart.
    pub fn new(err: &toml::de::Error, text: &str, origin: &str) -> TomlError {
        let offset = err.span().map_or(0, |s| s.start);
        let location = Location::from_offset(origin, text, offset);
        // toml keeps the key path private; without input context its Display ends with
        // "in `a.b`", which is the only public way to read it.
        let mut bare = err.clone();
        bare.set_input(None);
        let shown = bare.to_string();
        let field = shown
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("in `")?.strip_suffix('`').map(str::to_owned))
            .filter(|f| !f.is_empty());
        let field = field.or_else(|| key_on_line(text, location.line));
        TomlError {
            location,
            field,
            message: err.message().trim().to_owned(),
        }
    }
}

/// The key of a `key = value` line, used when toml does not tell which field failed.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (key, _) = l.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| key.to_owned())
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (write e.g. \"250ms\", \"5s\", \"1m30s\", \"2h\")")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

/// Parses a humane duration: one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`
/// (e.g. `250ms`, `5s`, `1m30s`); a bare `0` is zero. No crate for this is in the tree.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| err("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms = match rest[..unit_len].trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        rest = &rest[unit_len..];
        let part = n.checked_mul(unit_ms).ok_or_else(|| err("too large"))?;
        total_ms = total_ms.checked_add(part).ok_or_else(|| err("too large"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Writes a duration the way [`parse_duration`] reads it back (millisecond precision).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Serde adapter for `Duration` fields written as humane strings.
pub mod duration_serde {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    /// Reads a humane duration string (see [`super::parse_duration`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in [
            "",
            "5",
            "s",
            "5 parsecs",
            "1.5s",
            "-1s",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for ms in [0, 1, 999, 1000, 61_001, 3_723_004] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }

    #[test]
    fn location_counts_chars() {
        let l = Location::from_offset("x", "ab\nçd = 1", 5);
        assert_eq!((l.line, l.column), (2, 2));
        assert_eq!(Location::from_offset("x", "", 10).line, 1);
    }
}
