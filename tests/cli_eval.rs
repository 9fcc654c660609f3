//! `fieldflow eval` and `fieldflow check --write` through the real binary.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{datagen, fieldflow};
use fieldflow_datasets::{Dtype, FieldReader, FieldWriter, FileSpec, Grid, WriterOptions, checks::read_checks};
use ndarray::{Array3, Array4, Axis, s};
use predicates::prelude::*;
use serde_json::Value;

const METRICS: [&str; 5] = ["mmse", "smse", "spectrum_mse_log", "spectrum_rel_l2", "density_mse"];

/// Four 16² divergence-free velocity fields (u, v) from the smoke config, f64 on disk.
fn velocity(out: &Path, seed: u64) {
    datagen("smoke-datagen.toml", out, &["--seed", &seed.to_string(), "--set", "ns2d.output=\"velocity\""]);
}

fn eval_json(generated: &Path, reference: &Path, extra: &[&str]) -> Value {
    let out =
        fieldflow().args(["eval", "--json"]).arg(generated).arg("--reference").arg(reference).args(extra).assert();
    let out = out.success();
    serde_json::from_slice(&out.get_output().stdout).expect("valid JSON")
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Writes `fields` as a native file with the metadata of `like` (without its coefficients), on
/// `grid`.
fn write_like(like: &Path, out: &Path, fields: &Array4<f64>, grid: Grid, lx: f64) -> PathBuf {
    let reader = FieldReader::open(like).unwrap();
    let mut meta = reader.metadata().clone();
    meta.lx = lx;
    meta.coefficient_channels.clear();
    let mut w = FieldWriter::create(out, FileSpec::new(meta, grid, Dtype::F64), &WriterOptions::default()).unwrap();
    w.append(fields.view(), None).unwrap();
    w.finish().unwrap();
    out.to_path_buf()
}

fn read_all(path: &Path) -> Array4<f64> {
    let r = FieldReader::open(path).unwrap();
    r.read_range(0..r.len()).unwrap()
}

/// Pointwise mean and population standard deviation over the samples of one channel.
fn mean_std(a: &Array4<f64>, c: usize) -> (Array3<f64>, Array3<f64>) {
    let x = a.slice(s![.., c..=c, .., ..]);
    let mean = x.mean_axis(Axis(0)).unwrap();
    let var = x.map_axis(Axis(0), |v| {
        let m = v.mean().unwrap();
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
    });
    (mean, var.mapv(f64::sqrt))
}

#[test]
fn a_file_against_itself_scores_zero_and_its_physics_matches_check() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.h5");
    velocity(&a, 0);
    let v = eval_json(&a, &a, &[]);
    for scope in [&v["channels"]["u"], &v["channels"]["v"], &v["overall"]] {
        for m in METRICS {
            assert!(number(&scope[m]).abs() < 1e-24, "{m}: {scope}");
        }
    }
    assert_eq!(v["grid"], serde_json::json!([16, 16]));
    assert!(v["resampled"].is_null());
    assert_eq!(v["generated"]["samples"], 4);
    assert_eq!(v["spectral_band"], serde_json::json!([1, 7]));
    let checked = fieldflow().args(["check", "--json"]).arg(&a).assert().success();
    let checked: Value = serde_json::from_slice(&checked.get_output().stdout).unwrap();
    for side in ["generated", "reference"] {
        assert_eq!(v["constraint"][side]["check"], "divergence-free");
        assert_eq!(v["constraint"][side]["max"], checked["relative"]["max"]);
        assert!(number(&v["constraint"][side]["max"]) < 1e-12);
    }
    // The table.
    fieldflow()
        .arg("eval")
        .arg(&a)
        .arg("--reference")
        .arg(&a)
        .assert()
        .success()
        .stdout(predicate::str::contains("MMSE").and(predicate::str::contains("divergence-free")));
}

/// A Darcy pair file (`(a, u)` in `/fields`): eval takes the coefficient from channel `a` as
/// `check` does, and a solution perturbed by 1% no longer satisfies the equation.
#[test]
fn darcy_pair_files_are_checked_from_their_own_channels() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.h5");
    datagen("smoke-darcy-pair.toml", &pairs, &[]);
    let mut fields = read_all(&pairs);
    fields.slice_mut(s![.., 1, .., ..]).mapv_inplace(|u| 1.01 * u);
    let reader = FieldReader::open(&pairs).unwrap();
    let perturbed =
        write_like(&pairs, &dir.path().join("perturbed.h5"), &fields, reader.grid().clone(), reader.metadata().lx);
    let v = eval_json(&perturbed, &pairs, &[]);
    let checked = fieldflow().args(["check", "--json"]).arg(&pairs).assert().success();
    let checked: Value = serde_json::from_slice(&checked.get_output().stdout).unwrap();
    assert_eq!(v["constraint"]["reference"]["check"], "darcy");
    assert_eq!(v["constraint"]["reference"]["max"], checked["relative"]["max"]);
    assert!(number(&v["constraint"]["reference"]["max"]) < 1e-10, "{v}");
    // The coefficient is the data's, positive everywhere (3 or 12).
    assert_eq!(v["constraint"]["generated"]["nonpositive_coefficient_samples"], 0);
    assert_eq!(v["constraint"]["generated"]["coefficient_min"].as_f64(), Some(3.0));
    // −∇·(a∇(1.01 u)) − f = 0.01 f: a relative residual of 1%.
    let perturbed_max = number(&v["constraint"]["generated"]["max"]);
    assert!((perturbed_max - 0.01).abs() < 1e-8, "perturbed pairs: {perturbed_max}");
}

#[test]
fn different_seeds_score_small_nonzero_and_a_doubled_copy_scores_what_the_formulas_say() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.h5"), dir.path().join("b.h5"));
    velocity(&a, 0);
    velocity(&b, 1);
    let fields = read_all(&a);
    let energy = fields.iter().map(|x| x * x).sum::<f64>() / fields.len() as f64;
    let v = eval_json(&b, &a, &[]);
    for m in METRICS {
        let x = number(&v["overall"][m]);
        assert!(x > 0.0 && x.is_finite(), "{m} = {x}");
    }
    // Small next to the fields themselves: means and spreads of the two sets are alike.
    assert!(number(&v["overall"]["mmse"]) < energy, "{v}");
    assert!(number(&v["overall"]["smse"]) < energy, "{v}");
    assert!(number(&v["overall"]["spectrum_rel_l2"]) < 1.0, "{v}");

    // Doubling: mean and std double, so MMSE = ⟨mean²⟩ and SMSE = ⟨std²⟩ of the reference, and
    // the spectrum quadruples (relative error 3).
    let doubled = write_like(
        &a,
        &dir.path().join("doubled.h5"),
        &fields.mapv(|x| 2.0 * x),
        Grid::periodic(16, 16, 1.0, 1.0),
        1.0,
    );
    let v = eval_json(&doubled, &a, &[]);
    let (mut mmse_all, mut smse_all) = (0.0, 0.0);
    for (c, name) in ["u", "v"].into_iter().enumerate() {
        let (mean, std) = mean_std(&fields, c);
        let mmse = mean.iter().map(|m| m * m).sum::<f64>() / mean.len() as f64;
        let smse = std.iter().map(|s| s * s).sum::<f64>() / std.len() as f64;
        let got = &v["channels"][name];
        assert!((number(&got["mmse"]) - mmse).abs() <= 1e-12 * mmse, "{name}: {} vs {mmse}", got["mmse"]);
        assert!((number(&got["smse"]) - smse).abs() <= 1e-12 * smse, "{name}: {} vs {smse}", got["smse"]);
        assert!((number(&got["spectrum_rel_l2"]) - 3.0).abs() < 1e-10, "{got}");
        mmse_all += mmse / 2.0;
        smse_all += smse / 2.0;
    }
    assert!((number(&v["overall"]["mmse"]) - mmse_all).abs() <= 1e-12 * mmse_all);
    assert!((number(&v["overall"]["smse"]) - smse_all).abs() <= 1e-12 * smse_all);
    assert!((number(&v["overall"]["spectrum_rel_l2"]) - 3.0).abs() < 1e-10);

    // --channels and --max-samples.
    let v = eval_json(&b, &a, &["--channels", "v", "--max-samples", "2"]);
    assert_eq!(v["channels"].as_object().unwrap().keys().collect::<Vec<_>>(), ["v"]);
    assert_eq!((v["generated"]["samples"].as_u64(), v["reference"]["samples"].as_u64()), (Some(2), Some(2)));
}

#[test]
fn a_spectrally_refined_copy_is_compared_on_the_coarse_grid() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.h5");
    velocity(&a, 0);
    let fields = read_all(&a);
    let (n, c) = (fields.shape()[0], fields.shape()[1]);
    let mut fine = Array4::zeros((n, c, 32, 32));
    for i in 0..n {
        for ch in 0..c {
            let f = fieldflow_pde::resample::resample(fields.slice(s![i, ch, .., ..]), 32, 32).unwrap();
            fine.slice_mut(s![i, ch, .., ..]).assign(&f);
        }
    }
    let fine = write_like(&a, &dir.path().join("fine.h5"), &fine, Grid::periodic(32, 32, 1.0, 1.0), 1.0);
    let v = eval_json(&fine, &a, &[]);
    assert_eq!(v["grid"], serde_json::json!([16, 16]));
    let note = v["resampled"].as_str().expect("a note on the resampling");
    assert!(note.contains("generated set") && note.contains("spectral truncation"), "{note}");
    assert!(number(&v["overall"]["mmse"]) < 1e-26 && number(&v["overall"]["smse"]) < 1e-26, "{v}");
    assert!(number(&v["overall"]["spectrum_rel_l2"]) < 1e-12, "{v}");
    assert!(number(&v["overall"]["spectrum_mse_log"]) < 1e-12, "{v}");
    assert_eq!(v["generated"]["grid"], serde_json::json!([32, 32]));
    fieldflow()
        .arg("eval")
        .arg(&fine)
        .arg("--reference")
        .arg(&a)
        .assert()
        .success()
        .stdout(predicate::str::contains("spectral truncation"));
}

#[test]
fn bad_inputs_exit_2_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.h5");
    velocity(&a, 0);
    let eval = |generated: &Path, reference: &Path, extra: &[&str]| {
        fieldflow().arg("eval").arg(generated).arg("--reference").arg(reference).args(extra).assert().code(2)
    };
    let missing = dir.path().join("missing.h5");
    eval(&missing, &a, &[]).stderr(predicate::str::contains("missing.h5"));
    eval(&a, &missing, &[]).stderr(predicate::str::contains("missing.h5"));

    let w = dir.path().join("vorticity.h5");
    fieldflow()
        .args(["datagen", "--quiet", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke-datagen.toml"))
        .arg("--output")
        .arg(&w)
        .args(["--set", "ns2d.output=\"vorticity\""])
        .assert()
        .success();
    eval(&w, &a, &[])
        .stderr(predicate::str::contains("channel mismatch").and(predicate::str::contains("vorticity.h5")));
    eval(&w, &a, &["--channels", "u"])
        .stderr(predicate::str::contains("no channel \"u\"").and(predicate::str::contains("vorticity.h5")));

    let fields = read_all(&a);
    let wide = write_like(&a, &dir.path().join("wide.h5"), &fields, Grid::periodic(16, 16, 2.0, 1.0), 2.0);
    eval(&wide, &a, &[])
        .stderr(predicate::str::contains("different domain sizes").and(predicate::str::contains("wide.h5")));

    // A NaN written behind the writer's back.
    let nan = write_like(&a, &dir.path().join("nan.h5"), &fields, Grid::periodic(16, 16, 1.0, 1.0), 1.0);
    {
        let file = hdf5::File::open_rw(&nan).unwrap();
        let ds = file.dataset("fields").unwrap();
        let mut data = ds.read::<f64, ndarray::Ix4>().unwrap();
        data[[2, 1, 3, 5]] = f64::NAN;
        ds.write(&data).unwrap();
    }
    eval(&nan, &a, &[])
        .stderr(predicate::str::contains("nan.h5").and(predicate::str::contains("NaN in sample 2, channel v")));
    eval(&a, &nan, &[]).stderr(predicate::str::contains("reference set").and(predicate::str::contains("nan.h5")));
    eval(&a, &a, &["--max-samples", "0"]).stderr(predicate::str::contains("--max-samples"));
}

#[test]
fn check_write_stores_the_report_that_check_prints_and_refuses_upstream_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.h5");
    velocity(&a, 0);
    let before = read_all(&a);
    for _ in 0..2 {
        let out = fieldflow().args(["check", "--json", "--write"]).arg(&a).assert().success();
        let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(v["written"], "/checks/divergence-free");
        let records = read_checks(&a).unwrap();
        assert_eq!(records.len(), 1, "a second write replaces the first");
        let r = &records[0];
        assert_eq!((r.name.as_str(), r.kind.as_str()), ("divergence-free", "divergence-free"));
        assert_eq!(r.max, number(&v["relative"]["max"]));
        assert_eq!(r.mean, number(&v["relative"]["mean"]));
        assert_eq!(r.per_sample.len(), 4);
        assert!(r.metric.contains("relative divergence") && r.created_by.starts_with("fieldflow "));
        assert!(r.timestamp.ends_with('Z'), "{}", r.timestamp);
    }
    // The fields are untouched and the file still reads and checks.
    assert_eq!(read_all(&a), before);
    fieldflow().args(["check", "--write"]).arg(&a).assert().success().stdout(predicate::str::contains("written"));
    fieldflow().arg("info").arg(&a).assert().success().stdout(
        predicate::str::contains("checks (per-sample residuals").and(predicate::str::contains("relative divergence")),
    );
    let out = fieldflow().args(["info", "--json"]).arg(&a).assert().success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["checks"][0]["name"], "divergence-free");
    assert_eq!(v["checks"][0]["max"].as_f64(), read_checks(&a).unwrap().first().map(|r| r.max));

    // An FNO Darcy .mat (v7.3) file: read, but never modified.
    let upstream = dir.path().join("piececonst.mat");
    {
        let file = hdf5::File::create(&upstream).unwrap();
        let values = ndarray::Array3::from_shape_fn((5, 5, 2), |(y, x, n)| (y * 5 + x + n) as f64 + 1.0);
        file.new_dataset_builder().with_data(&values).create("coeff").unwrap();
        file.new_dataset_builder().with_data(&values).create("sol").unwrap();
    }
    let bytes = std::fs::read(&upstream).unwrap();
    fieldflow()
        .args(["check", "--write"])
        .arg(&upstream)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("piececonst.mat").and(predicate::str::contains("never modified")));
    assert_eq!(std::fs::read(&upstream).unwrap(), bytes);
    assert!(read_checks(&upstream).unwrap().is_empty());
}
