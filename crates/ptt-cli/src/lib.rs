//! The `ptt` command as a library, so its subcommands can be tested and the
//! load generator reused by the benches.
#![forbid(unsafe_code)]

pub mod cli;
pub mod load;
