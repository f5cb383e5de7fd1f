//! The ops port's bearer tokens: secrets that never show in logs and are compared in
//! constant time.

use std::fmt;
use std::sync::Arc;

/// A bearer token of the ops port (admin or view): a secret, so its `Debug` never shows it
/// (the config is printed in logs and panics) and requests are compared with it in constant
/// time. Deliberately not `PartialEq`: `==` on strings returns at the first difference.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Token(String);

/// The ops port's read token (`view-token`).
pub type ViewToken = Token;

impl Token {
    /// Shortest token accepted: a guessable admin token would hand out the whole network.
    pub const MIN_LEN: usize = 16;

    /// An empty token (e.g. `PTTD_ADMIN_TOKEN=` left blank by a compose file) disables the
    /// admin API like no token at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `presented` is this token, taking the same time wherever they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.0.as_bytes();
        // Lengths are compared openly: the length of the token is not the secret.
        expected.len() == presented.len() && bool::from(expected.ct_eq(presented))
    }

    /// The token's text, for the few places that must hand it on (the view cookie).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the token is long enough and has no surrounding spaces.
    pub fn well_formed(&self) -> bool {
        self.0.len() >= Token::MIN_LEN && self.0.trim() == self.0
    }
}

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Token(s.to_owned()))
    }
}

impl From<String> for Token {
    fn from(s: String) -> Self {
        Token(s)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The admin API's bearer tokens: `admin-token` (one, naming no one), or the lines of
/// `admin-token-file`, each token preceded by the name of the operator it belongs to
/// (`duty officer Li 3f9c…`). A named token is who the call log says acted, whatever the
/// request body claims: with one token per operator the audit trail names people, not a
/// shared secret. Revoking one operator is removing a line and restarting.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(from = "String")]
pub struct AdminTokens {
    operators: Vec<Operator>,
}

/// One admin token and the operator it belongs to, if named.
#[derive(Clone)]
struct Operator {
    name: Option<Arc<str>>,
    token: Token,
}

/// A line of `admin-token-file` that is not `[name] token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct AdminTokenLineError {
    /// 1-based line of the file.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl AdminTokens {
    /// Longest operator name: what the call log stores for an admin action.
    pub const MAX_NAME_CHARS: usize = 64;

    /// The tokens of an `admin-token-file`: one per line, the token last, any text before
    /// it the operator's name. Blank lines and lines starting with `#` are skipped. Every
    /// token must be well formed ([`Token::well_formed`]) and used once, every name once.
    pub fn parse_file(text: &str) -> Result<Self, AdminTokenLineError> {
        let mut operators: Vec<Operator> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_error = |reason: &str| AdminTokenLineError {
                line: index + 1,
                reason: reason.to_owned(),
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, token) = match line.rsplit_once(char::is_whitespace) {
                Some((name, token)) => (Some(name.trim()), token),
                None => (None, line),
            };
            let token = Token::from(token.to_owned());
            if !token.well_formed() {
                return Err(line_error(
                    "the token (the last word) must be at least 16 characters",
                ));
            }
            if name.is_some_and(|n| n.chars().count() > Self::MAX_NAME_CHARS) {
                return Err(line_error(
                    "the operator's name is longer than 64 characters",
                ));
            }
            if name.is_some_and(|n| n.chars().any(char::is_control)) {
                return Err(line_error("the operator's name holds a control character"));
            }
            if operators.iter().any(|o| o.token.expose() == token.expose()) {
                return Err(line_error("this token is already given on an earlier line"));
            }
            if name.is_some() && operators.iter().any(|o| o.name.as_deref() == name) {
                return Err(line_error(
                    "this operator already has a token on an earlier line",
                ));
            }
            operators.push(Operator {
                name: name.map(Arc::from),
                token,
            });
        }
        if operators.is_empty() {
            return Err(AdminTokenLineError {
                line: text.lines().count().max(1),
                reason: "no token in the file".into(),
            });
        }
        if operators.len() > 1 && operators.iter().any(|o| o.name.is_none()) {
            let line = text
                .lines()
                .position(|l| {
                    let l = l.trim();
                    !l.is_empty() && !l.starts_with('#') && !l.contains(char::is_whitespace)
                })
                .map_or(1, |i| i + 1);
            return Err(AdminTokenLineError {
                line,
                reason: "with several tokens, each needs its operator's name before it".into(),
            });
        }
        Ok(Self { operators })
    }

    /// No token at all (or one left blank): the admin API is disabled.
    pub fn is_empty(&self) -> bool {
        self.operators.iter().all(|o| o.token.is_empty())
    }

    /// Whether every token is long enough (an empty `admin-token` disables the API and is
    /// checked apart).
    pub fn well_formed(&self) -> bool {
        self.operators.iter().all(|o| o.token.well_formed())
    }

    /// The operator `presented` is the token of: `Some(name)` (`None` inside for an unnamed
    /// token), or `None` for no token of this set. Every token is compared, each in
    /// constant time, so the time taken does not tell which one was close.
    pub fn identify(&self, presented: &[u8]) -> Option<Option<&str>> {
        let mut found = None;
        for operator in &self.operators {
            if !operator.token.is_empty() && operator.token.matches(presented) {
                found = Some(operator.name.as_deref());
            }
        }
        found
    }
}

impl From<String> for AdminTokens {
    /// One token naming no one (`admin-token`).
    fn from(token: String) -> Self {
        Self {
            operators: vec![Operator {
                name: None,
                token: Token(token),
            }],
        }
    }
}

impl std::str::FromStr for AdminTokens {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(s.to_owned()))
    }
}

impl fmt::Debug for AdminTokens {
    /// The operators' names, never a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.operators
                    .iter()
                    .map(|o| o.name.as_deref().unwrap_or("<unnamed>")),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_takes_names_and_refuses_what_would_confuse_the_audit() {
        let tokens = AdminTokens::parse_file(
            "  Li   li-0123456789abcdef \n# x\nWang wang-0123456789abcdef\n",
        )
        .expect("two operators");
        assert_eq!(tokens.identify(b"li-0123456789abcdef"), Some(Some("Li")));
        assert_eq!(
            tokens.identify(b"wang-0123456789abcdef"),
            Some(Some("Wang"))
        );
        assert_eq!(tokens.identify(b"Li li-0123456789abcdef"), None);
        let bare = AdminTokens::parse_file("\nbare-0123456789abcdef\n").expect("one bare token");
        assert_eq!(bare.identify(b"bare-0123456789abcdef"), Some(None));

        let refused = |text: &str| AdminTokens::parse_file(text).unwrap_err();
        assert_eq!(refused("").line, 1);
        assert!(refused("# only a comment\n").reason.contains("no token"));
        assert_eq!(refused("Li li-0123456789abcdef\nWang short\n").line, 2);
        let twice = refused("Li same-0123456789abcdef\nWang same-0123456789abcdef\n");
        assert_eq!((twice.line, twice.reason.contains("earlier")), (2, true));
        let same_name = refused("Li a-0123456789abcdef\nLi b-0123456789abcdef\n");
        assert_eq!(same_name.line, 2);
        let unnamed = refused("Li a-0123456789abcdef\nb-0123456789abcdef\n");
        assert_eq!(unnamed.line, 2, "{unnamed}");
        assert!(
            refused("L\u{7}i a-0123456789abcdef\n")
                .reason
                .contains("control")
        );
        assert!(
            refused(&format!("{} a-0123456789abcdef", "x".repeat(65)))
                .reason
                .contains("64")
        );
    }
}
