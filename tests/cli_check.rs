//! `fieldflow check` through the real binary.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{datagen, fieldflow};
use predicates::prelude::*;

fn check_json(file: &Path, extra: &[&str]) -> serde_json::Value {
    let out = fieldflow().args(["check", "--json"]).arg(file).args(extra).assert().success();
    serde_json::from_slice(&out.get_output().stdout).expect("valid JSON")
}

#[test]
fn velocity_file_is_divergence_free_to_round_off_and_a_tiny_limit_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("velocity.h5");
    datagen("smoke-datagen.toml", &file, &["--set", "ns2d.output=\"velocity\""]);
    let v = check_json(&file, &[]);
    assert_eq!(v["check"], "divergence-free");
    assert_eq!(v["samples"], 4);
    assert_eq!(v["non_finite_samples"], 0);
    let max = v["relative"]["max"].as_f64().expect("number");
    assert!(max < 1e-12, "relative divergence {max}");
    assert_eq!(v["per_sample_relative"].as_array().expect("array").len(), 4);
    fieldflow()
        .arg("check")
        .arg(&file)
        .args(["--max-residual", "1e-6"])
        .assert()
        .success()
        .stdout(predicate::str::contains("divergence-free").and(predicate::str::contains("worst")));
    fieldflow()
        .arg("check")
        .arg(&file)
        .args(["--max-residual", "1e-30"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("exceeds --max-residual"));
}

#[test]
fn vorticity_only_file_checks_finiteness_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vorticity.h5");
    datagen("smoke-datagen.toml", &file, &["--set", "ns2d.output=\"vorticity\""]);
    fieldflow()
        .arg("check")
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to check except finiteness"));
    assert_eq!(check_json(&file, &[])["check"], "finite");
    // Forcing a divergence check on a file without u, v is bad input.
    fieldflow()
        .arg("check")
        .arg(&file)
        .args(["--constraint", "divergence-free"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("vorticity.h5"));
}

#[test]
fn darcy_file_solves_its_equation_and_a_wrong_forcing_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("darcy.h5");
    datagen(
        "darcy.toml",
        &file,
        &["--set", "samples=4", "--set", "darcy.resolution=17", "--set", "output.dtype=\"f64\""],
    );
    let v = check_json(&file, &[]);
    assert_eq!(v["check"], "darcy");
    assert_eq!(v["samples"], 4);
    let max = v["relative"]["max"].as_f64().expect("number");
    assert!(max < 1e-9, "relative Darcy residual {max}");
    fieldflow().arg("check").arg(&file).args(["--max-residual", "1e-9"]).assert().success();
    let wrong = check_json(&file, &["--forcing", "2.0"]);
    assert!(wrong["relative"]["max"].as_f64().expect("number") > 0.1, "{wrong}");
}

#[test]
fn darcy_piecewise_forcing_is_read_from_the_stored_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("piecewise.h5");
    datagen(
        "darcy.toml",
        &file,
        &[
            "--set",
            "samples=2",
            "--set",
            "darcy.resolution=17",
            "--set",
            "output.dtype=\"f64\"",
            "--set",
            "darcy.forcing_right=-0.5",
        ],
    );
    let v = check_json(&file, &[]);
    let max = v["relative"]["max"].as_f64().expect("number");
    assert!(max < 1e-9, "relative Darcy residual {max}: {v}");
    assert!(v["forcing"].as_str().expect("string").contains("elsewhere"), "{v}");
    // A constant forcing given on the command line does not fit this file.
    let wrong = check_json(&file, &["--forcing", "1.0"]);
    assert!(wrong["relative"]["max"].as_f64().expect("number") > 0.1, "{wrong}");
}

#[test]
fn unreadable_files_and_bad_flags_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-hdf5.h5");
    std::fs::write(&file, "this is not an HDF5 file\n").expect("write");
    fieldflow().arg("check").arg(&file).assert().code(2).stderr(predicate::str::contains("not-hdf5.h5"));
    let missing = dir.path().join("missing.h5");
    fieldflow().arg("check").arg(&missing).assert().code(2).stderr(predicate::str::contains("missing.h5"));
    fieldflow().arg("check").arg(&file).arg("--no-such-flag").assert().code(2);
}

#[test]
fn unknown_pde_or_constraint_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("velocity.h5");
    datagen("smoke-datagen.toml", &file, &["--set", "ns2d.output=\"velocity\""]);
    fieldflow()
        .arg("check")
        .arg(&file)
        .args(["--pde", "heat"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("velocity.h5"));
    fieldflow().arg("check").arg(&file).args(["--constraint", "curl-free"]).assert().code(2);
    // The Darcy check on a velocity file: its coefficient is the initial vorticity, not a.
    fieldflow()
        .arg("check")
        .arg(&file)
        .args(["--pde", "darcy"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("coefficient channel a"));
}

/// The gate cannot be switched off: `--max-residual nan` (and a negative limit) is bad input,
/// and a sample holding a NaN exceeds every limit, `inf` included (exit 3).
#[test]
fn max_residual_nan_is_refused_and_non_finite_samples_exceed_inf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("velocity.h5");
    datagen("smoke-datagen.toml", &file, &["--set", "ns2d.output=\"velocity\""]);
    for limit in ["nan", "NaN", "-1"] {
        fieldflow()
            .arg("check")
            .arg(&file)
            .arg(format!("--max-residual={limit}"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--max-residual"));
    }
    fieldflow().arg("check").arg(&file).args(["--max-residual", "inf"]).assert().success();
    {
        let h5 = hdf5::File::open_rw(&file).unwrap();
        let ds = h5.dataset("fields").unwrap();
        let mut data = ds.read::<f32, ndarray::Ix4>().unwrap();
        data[[1, 0, 2, 3]] = f32::NAN;
        ds.write(&data).unwrap();
    }
    fieldflow()
        .arg("check")
        .arg(&file)
        .args(["--max-residual", "inf"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("exceeds --max-residual"));
}

/// `--force` replaces regular files only: a directory or symlink at the output path is refused,
/// naming it, and left as it was (as root, `/dev/null` was once replaced by a regular file).
#[test]
fn force_never_replaces_a_directory_a_symlink_or_a_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("velocity.h5");
    datagen("smoke-datagen.toml", &file, &["--set", "ns2d.output=\"velocity\""]);
    let sub = dir.path().join("sub.h5");
    std::fs::create_dir(&sub).unwrap();
    let link = dir.path().join("link.h5");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    for (target, what) in
        [(sub.as_path(), "a directory"), (link.as_path(), "a symbolic link"), (Path::new("/dev/null"), "device")]
    {
        fieldflow()
            .args(["import", "--force", "--format", "native"])
            .arg(&file)
            .arg("-o")
            .arg(target)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(what).and(predicate::str::contains("regular files only")));
    }
    assert!(sub.is_dir() && std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(!Path::new("/dev/null.xdmf").exists());
}
