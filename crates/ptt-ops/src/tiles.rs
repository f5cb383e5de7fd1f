//! The console map's optional tile server (`console-tiles`): sites that run
//! one (or may use a public one) get streets under the district's zones.
//!
//! The page draws the zones without it; with it, the browser fetches
//! `{z}/{x}/{y}` Web-Mercator tiles straight from that server, so the
//! console page's Content-Security-Policy must name the server's origin.
//! That is why the template is checked here, once, at start: a template the
//! page cannot use, or one that would smuggle another directive into the
//! policy, is a configuration error, not a blank map found at 3 a.m.

use std::fmt;
use std::str::FromStr;

/// A tile URL template such as `https://tiles.example.org/{z}/{x}/{y}.png`:
/// `http` or `https`, a host, and each of `{z}`, `{x}` and `{y}` in its path.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct TileUrl {
    template: String,
    origin: String,
}

/// Why a tile URL template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileUrlError {
    /// Browsers fetch tiles over the web only.
    #[error("a tile URL starts with http:// or https://")]
    Scheme,
    /// Nothing between the scheme and the path.
    #[error("a tile URL names a host")]
    NoHost,
    /// The host part holds something a host name, address or port cannot.
    #[error("a tile URL's host may hold letters, digits, '.', '-', ':' and '[]' only")]
    Host,
    /// The page fills in exactly these three; anything else would be fetched as typed.
    #[error("a tile URL has {{z}}, {{x}} and {{y}} in its path and no other {{…}}")]
    Placeholders,
    /// Spaces, quotes, `;` or `,` would change the page's security policy.
    #[error("a tile URL has no spaces, quotes, ';', ',' or control characters")]
    Character,
}

impl TileUrl {
    /// The template as configured, for the page to fill in.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// `scheme://host[:port]`, the source the page's policy allows images from.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl FromStr for TileUrl {
    type Err = TileUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "\"';,\\".contains(c))
        {
            return Err(TileUrlError::Character);
        }
        let (scheme, rest) = text.split_once("://").ok_or(TileUrlError::Scheme)?;
        if scheme != "http" && scheme != "https" {
            return Err(TileUrlError::Scheme);
        }
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() {
            return Err(TileUrlError::NoHost);
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            return Err(TileUrlError::Host);
        }
        let path = &rest[host.len()..];
        let mut unfilled = path.to_owned();
        for placeholder in ["{z}", "{x}", "{y}"] {
            if !unfilled.contains(placeholder) {
                return Err(TileUrlError::Placeholders);
            }
            unfilled = unfilled.replace(placeholder, "");
        }
        if unfilled.contains(['{', '}']) {
            return Err(TileUrlError::Placeholders);
        }
        Ok(Self {
            template: text.to_owned(),
            origin: format!("{scheme}://{host}"),
        })
    }
}

impl TryFrom<String> for TileUrl {
    type Error = TileUrlError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Debug for TileUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_gives_its_origin() {
        let url: TileUrl = "https://tiles.example.org:8443/osm/{z}/{x}/{y}.png?key=abc"
            .parse()
            .unwrap();
        assert_eq!(url.origin(), "https://tiles.example.org:8443");
        assert_eq!(
            url.template(),
            "https://tiles.example.org:8443/osm/{z}/{x}/{y}.png?key=abc"
        );
        let local: TileUrl = "http://[::1]:8080/{z}/{y}/{x}".parse().unwrap();
        assert_eq!(local.origin(), "http://[::1]:8080");
    }

    #[test]
    fn templates_the_page_cannot_use_are_refused_with_the_reason() {
        for (text, error) in [
            (
                "ftp://tiles.example.org/{z}/{x}/{y}.png",
                TileUrlError::Scheme,
            ),
            ("tiles.example.org/{z}/{x}/{y}.png", TileUrlError::Scheme),
            ("https:///{z}/{x}/{y}.png", TileUrlError::NoHost),
            (
                "https://{s}.tile.example.org/{z}/{x}/{y}.png",
                TileUrlError::Host,
            ),
            (
                "https://user@tiles.example.org/{z}/{x}/{y}",
                TileUrlError::Host,
            ),
            (
                "https://tiles.example.org/{z}/{x}.png",
                TileUrlError::Placeholders,
            ),
            (
                "https://tiles.example.org/{z}/{x}/{y}@{r}.png",
                TileUrlError::Placeholders,
            ),
            (
                "https://tiles.example.org/{z}/{x}/{y}.png;script-src",
                TileUrlError::Character,
            ),
            (
                "https://tiles.example.org/{z}/{x}/{y} *",
                TileUrlError::Character,
            ),
        ] {
            assert_eq!(text.parse::<TileUrl>(), Err(error), "{text}");
        }
    }
}
