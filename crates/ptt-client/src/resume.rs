//! The session resumption credential of the latest login (proto/voice.md
//! §2.1): kept in memory only, presented instead of the secret when the
//! client logs in again, forgotten when the relay refuses it.

use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

/// The latest credential the relay handed out, if any.
#[derive(Default)]
pub(crate) struct ResumeCredential(Mutex<Option<Bytes>>);

/// Never shows the credential: it logs the terminal in like its secret.
impl std::fmt::Debug for ResumeCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = lock(&self.0).is_some();
        f.debug_tuple("ResumeCredential")
            .field(&if held { "<redacted>" } else { "none" })
            .finish()
    }
}

/// The lock, even if a holder panicked (the value is always whole).
fn lock(mutex: &Mutex<Option<Bytes>>) -> MutexGuard<'_, Option<Bytes>> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl ResumeCredential {
    /// The credential to present at the next login, if any.
    pub(crate) fn get(&self) -> Option<Bytes> {
        lock(&self.0).clone()
    }

    /// Keeps a fresh credential from `HelloOk`; an empty one (the relay
    /// offers no resumption) forgets the old one.
    pub(crate) fn keep(&self, token: Bytes) {
        *lock(&self.0) = (!token.is_empty()).then_some(token);
    }

    /// Forgets the credential: the relay refused it.
    pub(crate) fn forget(&self) {
        *lock(&self.0) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_forgets_on_refusal_and_never_shows_it() {
        let credential = ResumeCredential::default();
        assert_eq!(credential.get(), None);
        credential.keep(Bytes::from_static(b"first"));
        credential.keep(Bytes::from_static(b"second"));
        assert_eq!(credential.get().as_deref(), Some(&b"second"[..]));
        assert!(!format!("{credential:?}").contains("second"));
        credential.keep(Bytes::new());
        assert_eq!(credential.get(), None, "a relay without resumption");
        credential.keep(Bytes::from_static(b"third"));
        credential.forget();
        assert_eq!(credential.get(), None);
    }
}
