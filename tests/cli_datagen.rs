//! `fieldflow datagen`, `info` and `merge` through the real binary.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::fieldflow;
use fieldflow_datasets::FieldReader;
use predicates::prelude::*;

fn smoke_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke-datagen.toml")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn datagen_writes_a_file_with_sidecar_that_info_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("smoke.h5");
    fieldflow()
        .args(["datagen", "--quiet", "--config"])
        .arg(smoke_config())
        .arg("--output")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote 4 samples"));
    assert_eq!(files_in(dir.path()), ["smoke.h5", "smoke.xdmf"]);
    let reader = FieldReader::open(&out).expect("readable output");
    assert_eq!(reader.len(), 4);
    assert_eq!(reader.sample_shape(), [3, 16, 16]);
    assert_eq!(reader.metadata().channels, ["w", "u", "v"]);
    assert_eq!(reader.time().map(<[f64]>::len), Some(2));
    assert!(reader.metadata().config.contains("solve_resolution = 32"));
    let info = fieldflow().arg("info").arg(&out).assert().success();
    let text = String::from_utf8_lossy(&info.get_output().stdout).into_owned();
    assert!(text.contains("/fields") && text.contains("navier_stokes"), "{text}");
    let json = fieldflow().args(["info", "--json"]).arg(&out).assert().success();
    let value: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).expect("valid JSON");
    assert_eq!(value["samples"], 4);
    assert_eq!(value["sample_shape"], serde_json::json!([3, 16, 16]));
}

#[test]
fn sharded_runs_merge_into_the_unsharded_file_and_threads_do_not_matter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = dir.path().join("whole.h5");
    let datagen = |out: &Path, extra: &[&str]| {
        fieldflow()
            .args(["datagen", "--quiet", "--config"])
            .arg(smoke_config())
            .arg("--output")
            .arg(out)
            .args(extra)
            .assert()
            .success();
    };
    datagen(&whole, &["--set", "samples=5"]);
    let sharded = dir.path().join("part.h5");
    datagen(&sharded, &["--set", "samples=5", "--shard", "0/2", "--threads", "1"]);
    datagen(&sharded, &["--set", "samples=5", "--shard", "1/2"]);
    let shards = [dir.path().join("part.shard-0-of-2.h5"), dir.path().join("part.shard-1-of-2.h5")];
    assert_eq!(FieldReader::open(&shards[0]).expect("shard").len(), 2);
    let merged = dir.path().join("merged.h5");
    fieldflow().args(["merge", "--quiet", "-o"]).arg(&merged).args(&shards).assert().success();
    let (a, b) = (FieldReader::open(&whole).expect("whole"), FieldReader::open(&merged).expect("merged"));
    assert_eq!(a.len(), 5);
    assert_eq!(a.read_range(0..5).expect("fields"), b.read_range(0..5).expect("fields"));
    assert_eq!(a.read_coefficients_range(0..5).expect("c"), b.read_coefficients_range(0..5).expect("c"));
    assert_eq!(a.read_trajectories_range(0..5).expect("t"), b.read_trajectories_range(0..5).expect("t"));
    // Identical metadata, including the config text up to the output name.
    let mut meta = b.metadata().clone();
    meta.config = meta.config.replace("part.h5", "whole.h5");
    assert_eq!(a.metadata(), &meta);
    assert_eq!(a.fields_stats(), b.fields_stats());
}

#[test]
fn dry_run_prints_the_effective_config_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.h5");
    fieldflow()
        .args(["datagen", "--dry-run", "--set", "ns2d.viscosity=0.5", "--config"])
        .arg(smoke_config())
        .arg("--output")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("viscosity = 0.5").and(predicate::str::contains("[ns2d]")));
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn bad_input_exits_with_2_names_the_problem_and_leaves_no_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.h5");
    let bad_config = dir.path().join("bad.toml");
    let base = std::fs::read_to_string(smoke_config()).expect("smoke config");
    let cases: Vec<(String, Vec<String>, &str)> = vec![
        (base.replace("viscosity = 1e-2", "viscositty = 1e-2"), vec![], "unknown key `ns2d.viscositty`"),
        (base.clone(), vec!["--set".into(), "ns2d.dt=-1".into()], "`ns2d.dt` = -1"),
        (base.clone(), vec!["--set".into(), "samples=\"many\"".into()], "`samples`"),
        (base.clone(), vec!["--shard".into(), "3/2".into()], "invalid shard `3/2`"),
        (base.replace("pde = \"ns2d\"", "pde = \"heat\""), vec![], "`pde`"),
        (format!("{base}\n[darcy]\nresolution = 9\n"), vec![], "section [darcy] does not apply"),
        ("samples = \n".into(), vec![], "is not valid TOML"),
    ];
    for (text, extra, message) in cases {
        std::fs::write(&bad_config, text).expect("write config");
        fieldflow()
            .args(["datagen", "--quiet", "--config"])
            .arg(&bad_config)
            .arg("--output")
            .arg(&out)
            .args(&extra)
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains(message)
                    .and(predicate::str::contains("bad.toml").or(predicate::str::contains("shard"))),
            );
        assert_eq!(files_in(dir.path()), ["bad.toml"], "no output for {message}");
    }
    // A missing config, an existing output without --force, and a non-HDF5 file for `info`.
    fieldflow()
        .args(["datagen", "--config", "/nonexistent.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent.toml"));
    std::fs::write(&out, b"not hdf5").expect("write");
    fieldflow()
        .args(["datagen", "--quiet", "--config"])
        .arg(smoke_config())
        .arg("--output")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use --force"));
    fieldflow().arg("info").arg(&out).assert().code(2).stderr(predicate::str::contains("not an HDF5 file"));
    fieldflow().args(["datagen", "--bogus"]).assert().code(2);
}

/// The Python interpreter with h5py and numpy (`FIELDFLOW_PYTHON`, as set by `scripts/test`).
fn python() -> String {
    std::env::var("FIELDFLOW_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn check_with_python(kind: &str, file: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_physics.py");
    let out = std::process::Command::new(python()).arg(&script).arg(kind).arg(file).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} ({e}); run scripts/test, or set FIELDFLOW_PYTHON to a python with h5py and numpy",
            python()
        )
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "independent {kind} check failed: {text}");
}

#[test]
fn generated_velocity_and_darcy_data_pass_independent_numpy_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let velocity = dir.path().join("velocity.h5");
    fieldflow()
        .args(["datagen", "--quiet", "--config"])
        .arg(smoke_config())
        .arg("--output")
        .arg(&velocity)
        .args(["--set", "ns2d.output=\"velocity\""])
        .assert()
        .success();
    check_with_python("velocity", &velocity);
    let darcy = dir.path().join("darcy.h5");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/darcy.toml");
    fieldflow()
        .args(["datagen", "--quiet", "--config"])
        .arg(config)
        .arg("--output")
        .arg(&darcy)
        .args(["--set", "samples=6", "--set", "darcy.resolution=33", "--set", "output.dtype=\"f64\""])
        .assert()
        .success();
    check_with_python("darcy", &darcy);
}

#[test]
fn import_converts_a_pdebench_file_written_by_h5py() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("2D_DarcyFlow_beta1.0_Train.hdf5");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/tests/python/make_pdebench.py");
    let status =
        std::process::Command::new(python()).arg(&script).arg("darcy").arg(&src).status().expect("python runs");
    assert!(status.success(), "make_pdebench.py failed; run scripts/test to set up .venv");
    let out = dir.path().join("darcy.h5");
    fieldflow()
        .arg("import")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 3 samples"));
    let reader = FieldReader::open(&out).expect("imported file");
    assert_eq!(reader.sample_shape(), [1, 4, 5]);
    // value(n, y, x) = n*10000 + y*10 + x + 0.5 lands at [n, 0, y, x] (PDEBench stores (x, y)).
    let fields = reader.read_range(0..3).expect("fields");
    assert_eq!(fields[[2, 0, 3, 1]], 20031.5);
    assert_eq!(reader.read_coefficients_range(0..1).expect("a")[[0, 0, 1, 4]], -14.5);
    // Bad flags and files: exit 2, no output.
    let bad = dir.path().join("bad.h5");
    fieldflow().arg("import").arg(&src).arg("-o").arg(&bad).args(["--format", "pdebench-nope"]).assert().code(2);
    fieldflow().arg("import").arg(&src).arg("-o").arg(&bad).args(["--format", "fno-ns-mat"]).assert().code(2);
    fieldflow()
        .arg("import")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--force"));
    assert!(!bad.exists());
}
