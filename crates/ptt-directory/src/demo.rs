//! The built-in demo district (ARCHITECTURE §1), documented in `docs/demo-district.md`.
//!
//! The district is described in code in `demo_build.rs` (compiled for tests only),
//! deterministic to the byte. Its TOML, secrets already hashed, is embedded from
//! `assets/demo-district.toml`, so the relay starts without hashing anything; a test
//! regenerates both the asset and the tables in the doc and fails if either is stale
//! (`PTTD_BLESS=1` rewrites them).

/// Every demo terminal's secret is this prefix followed by its id: `demo-301`.
pub const DEMO_SECRET_PREFIX: &str = "demo-";

pub(crate) const DEMO_ORIGIN: &str = "<built-in demo>";
pub(crate) const DEMO_TOML: &str = include_str!("../assets/demo-district.toml");
