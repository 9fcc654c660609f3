//! Helpers shared by the command-line tests: the binary, the shipped configs, `--set` paths and
//! data generation. Each test crate uses a part of them.

#![allow(dead_code, clippy::expect_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The `fieldflow` binary of this build.
pub fn fieldflow() -> Command {
    Command::cargo_bin("fieldflow").expect("the fieldflow binary is built")
}

/// `configs/<name>` of the repository.
pub fn config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs").join(name)
}

/// `key="path"` for `--set`.
pub fn set_path(key: &str, path: &Path) -> String {
    format!("{key}={:?}", path.display().to_string())
}

/// `fieldflow datagen --quiet --config configs/<name> --output <out> <extra>`, which must succeed.
pub fn datagen(name: &str, out: &Path, extra: &[&str]) {
    fieldflow()
        .args(["datagen", "--quiet", "--config"])
        .arg(config(name))
        .arg("--output")
        .arg(out)
        .args(extra)
        .assert()
        .success();
}
