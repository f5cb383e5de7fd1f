//! Compiles `proto/ptt.proto` into Rust types at build time.
//!
//! protox parses the schema in pure Rust, so building needs no `protoc`
//! binary; prost-build then generates the code from the file descriptors.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("../../proto");
    let schema = proto_dir.join("ptt.proto");

    // Rebuild when the schema (or this script) changes, and only then: without
    // these lines cargo would rerun the script on any change in the package.
    println!("cargo:rerun-if-changed={}", schema.display());
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile([&schema], [&proto_dir])?;
    prost_build::Config::new()
        // `bytes` fields decode as `Bytes` slices of the frame, without a copy.
        .bytes(["."])
        // `Hello` carries the terminal's secret: its Debug (in lib.rs) redacts
        // it so that logging a message never leaks a credential.
        .skip_debug([".ptt.v1.Hello"])
        .compile_fds(fds)?;
    Ok(())
}
