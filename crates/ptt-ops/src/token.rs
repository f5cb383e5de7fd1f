//! The ops port's bearer tokens: secrets that never show in logs and are compared in
//! constant time.

use std::fmt;

/// A bearer token of the ops port (admin or view): a secret, so its `Debug` never shows it
/// (the config is printed in logs and panics) and requests are compared with it in constant
/// time. Deliberately not `PartialEq`: `==` on strings returns at the first difference.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Token(String);

/// The admin API's bearer token (`admin-token`).
pub type AdminToken = Token;

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
