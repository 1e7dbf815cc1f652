//! The workspace's `rust-version` (in the root `Cargo.toml`) is true: no
//! locked dependency needs a newer Rust. A user on an older toolchain then
//! gets cargo's clear "requires rustc X" message instead of a confusing
//! build failure deep in a dependency, and clippy's `incompatible_msrv`
//! lint checks our own code against the same version.
//!
//! Reads `cargo metadata` for this platform, offline and locked (the
//! dependencies are already downloaded when the tests run).

use std::process::Command;

/// `1.90` or `1.90.0` as comparable numbers.
fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn no_dependency_needs_a_newer_rust_than_the_workspace_says() {
    let cargo = env!("CARGO");
    let host = String::from_utf8(
        Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("-vV")
            .output()
            .expect("rustc runs")
            .stdout,
    )
    .unwrap();
    let host = host
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string();
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours = env!("CARGO_PKG_RUST_VERSION");
    assert!(!ours.is_empty(), "the workspace declares no rust-version");
    let too_new: Vec<String> = packages
        .iter()
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            (version(needs) > version(ours))
                .then(|| format!("{} {} needs {needs}", p["name"], p["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "the workspace says rust-version = {ours}, but: {}; raise it in Cargo.toml",
        too_new.join(", ")
    );
    // And the check has something to check: the locked graph is there.
    assert!(packages.len() > 50, "only {} packages", packages.len());
}
