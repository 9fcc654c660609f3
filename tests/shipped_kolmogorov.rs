//! The flagship model `models/kolmogorov` (forced 2D turbulence, Kolmogorov flow at Re = 1000)
//! with `configs/kolmogorov-generate.toml`, through the real binary: `generate` 64 fields, then
//! `eval --json` against the 256 held-out fields of `models/kolmogorov/reference.h5`.
//!
//! The bounds are the numbers measured for the shipped checkpoint (1500 steps; mean field,
//! fitted source, 32 × 32 modes) with margins for the run-to-run rounding of another CPU, next
//! to the fidelity issue's targets: worst |log10 E_gen/E_ref| over the 31 shells measured 0.096
//! (target 0.1; bound 0.13), vorticity-PDF L1 0.078 (target 0.05, missed; bound 0.1), increment
//! flatness at r = 1, 2, 4, 8 within 3.8 % (target and bound 10 %), energy-budget terms −7 %,
//! −2 %, −9 % (target 10 %; bound 15 %), divergence at round-off (1.7e-15; bound 1e-13).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

/// Generates with the shipped config and `sets` (no previews), then returns `eval --json` of the
/// fields against `reference`.
fn generate_and_eval(sets: &[&str], reference: &str) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kolmogorov.h5");
    let mut generate = Command::cargo_bin("fieldflow").unwrap();
    generate.current_dir(root).args(["generate", "--quiet", "--config", "configs/kolmogorov-generate.toml"]);
    for set in sets.iter().chain(&["preview.samples=0"]) {
        generate.args(["--set", set]);
    }
    generate.arg("-o").arg(&out).assert().success();
    let assert = Command::cargo_bin("fieldflow")
        .unwrap()
        .current_dir(root)
        .arg("eval")
        .arg(&out)
        .args(["--reference", reference, "--json"])
        .assert()
        .success();
    serde_json::from_slice(&assert.get_output().stdout).unwrap()
}

/// The number at JSON pointer `p`.
fn num(v: &Value, p: &str) -> f64 {
    v.pointer(p).and_then(Value::as_f64).unwrap_or_else(|| panic!("{p} missing in {v:#}"))
}

/// Each energy-budget term within `bound` (relative) of the reference's.
fn assert_budget_within(v: &Value, bound: f64) {
    for term in ["injection", "dissipation", "drag"] {
        let g = num(v, &format!("/turbulence/budget/{term}/generated"));
        let r = num(v, &format!("/turbulence/budget/{term}/reference"));
        assert!((g / r - 1.0).abs() < bound, "{term}: {g} vs {r}");
    }
}

#[test]
fn flagship_model_is_divergence_free_with_the_datas_spectrum_increments_and_budget() {
    let v = generate_and_eval(&[], "models/kolmogorov/reference.h5");
    let num = |p: &str| num(&v, p);
    // Relative divergence |div u|/|grad u| in f64 (measured 1.5e-15).
    assert!(num("/constraint/generated/max") < 1e-13, "{}", num("/constraint/generated/max"));
    let turbulence = "/turbulence";
    // Measured 0.096 (shell 1: 0.80, shell 17: 1.19).
    let worst = num(&format!("{turbulence}/spectrum/worst_abs_log10_ratio"));
    assert!(worst < 0.13, "worst |log10 E_gen/E_ref| = {worst}");
    // Measured 0.078.
    let l1 = num(&format!("{turbulence}/vorticity/pdf_l1"));
    assert!(l1 < 0.1, "vorticity PDF L1 = {l1}");
    for i in 0..4 {
        let g = num(&format!("{turbulence}/increments/{i}/flatness/generated"));
        let r = num(&format!("{turbulence}/increments/{i}/flatness/reference"));
        assert!((g / r - 1.0).abs() < 0.1, "increment flatness at separation {i}: {g} vs {r}");
    }
    // Measured −7 %, −2 %, −9 %: the forced mean flow is in phase with the force.
    assert_budget_within(&v, 0.15);
}

/// Zero-shot at 128² against `models/kolmogorov/reference-128.h5` (32 held-out fields solved at
/// 256², stored at 128²): the shells of the training grid (1–31) keep their 64² accuracy
/// (measured 0.86–1.21; bound 0.75–1.35), the budget holds (measured −2 %, −3 %, −10 %; bound
/// 20 %) and the divergence is at round-off. The shells the finer grid adds (32–63) are too
/// energetic (measured 1.3–4.0×) and are only held below 6× here; see the README.
#[test]
fn flagship_model_zero_shot_at_128_keeps_the_training_shells() {
    let v = generate_and_eval(&["resolution=128", "samples=32", "batch=32"], "models/kolmogorov/reference-128.h5");
    let num = |p: &str| num(&v, p);
    assert!(num("/constraint/generated/max") < 1e-13, "{}", num("/constraint/generated/max"));
    let shells = v.pointer("/turbulence/spectrum/shells").and_then(Value::as_array).unwrap();
    assert_eq!(shells.len(), 63, "every shell of the 128² grid holds ≥ 1e-8 of the energy");
    for s in shells {
        let (k, r) = (s["shell"].as_u64().unwrap(), s["ratio"].as_f64().unwrap());
        let (lo, hi) = if k <= 31 { (0.75, 1.35) } else { (0.75, 6.0) };
        assert!((lo..=hi).contains(&r), "shell {k}: E_gen/E_ref = {r} outside [{lo}, {hi}]");
    }
    assert_budget_within(&v, 0.2);
}
