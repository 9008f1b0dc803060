//! Where the repository, its scripts and the scratch directory are.

use std::path::PathBuf;

/// The repository root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// `integration/cluster.sh`.
pub fn cluster_script() -> PathBuf {
    repo_root().join("integration").join("cluster.sh")
}

/// `<repo>/integration/galera.sh`.
pub fn galera_script() -> PathBuf {
    repo_root().join("integration").join("galera.sh")
}

/// `$RWPROXY_SCRATCH`, or `<repo>/.scratch` like `cluster.sh` uses.
pub fn scratch_dir() -> PathBuf {
    match std::env::var_os("RWPROXY_SCRATCH") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join(".scratch"),
    }
}

/// The rwproxy binary the tests run: `RWPROXY_TEST_BIN` when set, else `built` (the test
/// binary's `env!("CARGO_BIN_EXE_rwproxy")`, which only the test crate itself can name).
pub fn proxy_bin_or(built: &str) -> std::path::PathBuf {
    match std::env::var_os("RWPROXY_TEST_BIN") {
        Some(path) if !path.is_empty() => std::path::PathBuf::from(path),
        _ => std::path::PathBuf::from(built),
    }
}
