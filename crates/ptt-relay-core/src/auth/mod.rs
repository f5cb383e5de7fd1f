//! Login cost under control. Checking a secret is deliberately expensive
//! (argon2), so the relay bounds what logins can make it spend:
//!
//! - `limiter`: failed logins per (source address, terminal), an attempt
//!   counting from before its hash until it succeeds, and a global budget of
//!   failures past which failed logins are answered late;
//! - `pool`: at most a few verifications at once, within a memory budget,
//!   behind a short queue that refuses at once when full;
//! - `resume` and `resume_key`: credentials the relay signs after a login
//!   and checks without argon2 on the next one, under a key kept in the data
//!   directory;
//! - `login`: all three built from [`LoginSettings`] as one [`Authenticator`].

pub mod limiter;
pub mod login;
pub mod pool;
pub mod resume;
pub mod resume_key;

pub use limiter::AuthLimiter;
pub use login::{Authenticator, LoginSettings};
