//! Compiles `proto/atp/v1/*.proto` with prost and tonic (clients and servers) and writes the
//! file descriptor set that `atp_grpc::FILE_DESCRIPTOR_SET` embeds for server reflection.
//!
//! `protoc` works on a fresh machine with no manual step: `$PROTOC` when it is set, otherwise the
//! binary shipped by `protoc-bin-vendored`, whose include directory also provides the
//! `google/protobuf/*` well-known types.

use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Name of the descriptor set file in `OUT_DIR`; `src/lib.rs` includes it.
const DESCRIPTOR_FILE: &str = "atp_v1_descriptor.bin";

fn main() -> io::Result<()> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let proto_root = manifest_dir.join("../../proto");
    let proto_dir = proto_root.join("atp/v1");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    // Rerun when any file in the contract changes, appears or disappears, or when the choice of
    // protoc changes. (A directory path makes cargo compare the newest mtime inside it.)
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PROTOC");
    println!("cargo:rerun-if-env-changed=PROTOC_INCLUDE");

    let protos = proto_files(&proto_dir)?;
    if protos.is_empty() {
        return Err(io::Error::other(format!("no .proto files in {}", proto_dir.display())));
    }

    let mut includes = vec![proto_root];
    let mut config = tonic_prost_build::Config::new();
    match env::var_os("PROTOC").filter(|p| !p.is_empty()) {
        // prost-build honours $PROTOC (and $PROTOC_INCLUDE) itself.
        Some(protoc) => {
            config.protoc_executable(protoc);
        }
        None => {
            let protoc = protoc_bin_vendored::protoc_bin_path().map_err(|e| {
                io::Error::other(format!(
                    "no vendored protoc for this platform ({e}); install protoc and set PROTOC"
                ))
            })?;
            config.protoc_executable(protoc);
            if let Ok(include) = protoc_bin_vendored::include_path() {
                includes.push(include);
            }
        }
    }

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .file_descriptor_set_path(out_dir.join(DESCRIPTOR_FILE))
        // The directory-level rerun-if-changed above covers the files, including new ones.
        .emit_rerun_if_changed(false)
        .compile_with_config(config, &protos, &includes)
}

/// The `.proto` files directly in `dir`, sorted, so that the generated code is deterministic.
fn proto_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "proto") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
