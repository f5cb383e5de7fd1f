//! Terminal secrets as argon2id PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
//!
//! Verification reads the parameters from the stored string, so one directory may mix light
//! hashes (demo, load tests) with operator-made ones at argon2's defaults.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism.
    pub p: u32,
}

/// Largest memory cost accepted in a stored hash: verifying costs this much per login.
pub(crate) const MAX_M_KIB: u32 = 1024 * 1024;

impl HashParams {
    /// argon2's recommended defaults (19 MiB, t=2): for operator-made directories.
    pub const DEFAULT: HashParams = HashParams {
        m_kib: Params::DEFAULT_M_COST,
        t: Params::DEFAULT_T_COST,
        p: Params::DEFAULT_P_COST,
    };

    /// 1 MiB, t=1: for the demo district and load-test directories, whose secrets are not
    /// secret anyway, so that hashing hundreds of them is fast.
    pub const LIGHT: HashParams = HashParams {
        m_kib: 1024,
        t: 1,
        p: 1,
    };

    /// The parameters a PHC string was made with, if it is a valid argon2id hash.
    pub fn of_hash(phc: &str) -> Option<HashParams> {
        let hash = PasswordHash::new(phc).ok()?;
        let params = Params::try_from(&hash).ok()?;
        Some(HashParams {
            m_kib: params.m_cost(),
            t: params.t_cost(),
            p: params.p_cost(),
        })
    }

    fn argon2(self) -> Result<Argon2<'static>, HashError> {
        let params =
            Params::new(self.m_kib, self.t, self.p, None).map_err(|e| HashError(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hashing failed: the parameters are out of argon2's range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argon2: {0}")]
pub struct HashError(String);

impl HashError {
    pub(crate) fn msg(m: impl std::fmt::Display) -> HashError {
        HashError(m.to_string())
    }
}

/// Hashes a secret with a fresh random salt, for writing directory files.
pub fn hash_secret(secret: &[u8], params: HashParams) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    hash_with_salt(secret, params, &salt)
}

/// Hashes with a given salt: deterministic output for the demo asset and seeded generators.
pub(crate) fn hash_with_salt(
    secret: &[u8],
    params: HashParams,
    salt: &[u8],
) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| HashError(e.to_string()))?;
    let hash = params
        .argon2()?
        .hash_password(secret, &salt)
        .map_err(|e| HashError(e.to_string()))?;
    Ok(hash.to_string())
}

/// Constant-time check of `secret` against a PHC string; any malformed hash is `false`.
pub(crate) fn verify(phc: &str, secret: &[u8]) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default().verify_password(secret, &hash).is_ok()
}

/// Why a stored hash is unusable, for load-time validation.
pub(crate) fn check(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC string: {e}"))?;
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return Err(format!(
            "algorithm is {}, expected argon2id",
            hash.algorithm
        ));
    }
    let params = Params::try_from(&hash).map_err(|e| format!("bad argon2 parameters: {e}"))?;
    if params.m_cost() > MAX_M_KIB {
        return Err(format!(
            "memory cost {} KiB is above the limit of {MAX_M_KIB} KiB",
            params.m_cost()
        ));
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("salt or hash missing".to_owned());
    }
    Ok(())
}
