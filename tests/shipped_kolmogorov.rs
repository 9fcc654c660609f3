//! The flagship model `models/kolmogorov` (forced 2D turbulence, Kolmogorov flow at Re = 1000)
//! with `configs/kolmogorov-generate.toml`, through the real binary: `generate` 64 fields, then
//! `eval --json` against the 256 held-out fields of `models/kolmogorov/reference.h5`.
//!
//! The bounds are the numbers measured for the shipped checkpoint (6000 steps) with a margin,
//! not the fidelity issue's targets, which it misses on the spectrum (worst |log10| 0.245
//! against 0.1: the large scales carry 0.57–0.75 of the data's energy), the vorticity PDF (L1
//! 0.118 against 0.05) and the energy budget (injection ≈ 0 against 0.23; see the README). The
//! increment flatness at r = 1, 2, 4, 8 meets the target (within 10 %; measured ≤ 5.4 %) and the
//! divergence is at round-off.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

#[test]
fn flagship_model_is_divergence_free_with_the_datas_increment_flatness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kolmogorov.h5");
    Command::cargo_bin("fieldflow")
        .unwrap()
        .current_dir(root)
        .args([
            "generate",
            "--quiet",
            "--config",
            "configs/kolmogorov-generate.toml",
            "--set",
            "preview.samples=0",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    let assert = Command::cargo_bin("fieldflow")
        .unwrap()
        .current_dir(root)
        .arg("eval")
        .arg(&out)
        .args(["--reference", "models/kolmogorov/reference.h5", "--json"])
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let num = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or_else(|| panic!("{p} missing in {v:#}"));
    // Relative divergence |div u|/|grad u| in f64 (measured 1.5e-15).
    assert!(num("/constraint/generated/max") < 1e-13, "{}", num("/constraint/generated/max"));
    let turbulence = "/turbulence";
    // Measured 0.245 (shell 2: 0.568).
    let worst = num(&format!("{turbulence}/spectrum/worst_abs_log10_ratio"));
    assert!(worst < 0.3, "worst |log10 E_gen/E_ref| = {worst}");
    // Measured 0.118.
    let l1 = num(&format!("{turbulence}/vorticity/pdf_l1"));
    assert!(l1 < 0.15, "vorticity PDF L1 = {l1}");
    for i in 0..4 {
        let g = num(&format!("{turbulence}/increments/{i}/flatness/generated"));
        let r = num(&format!("{turbulence}/increments/{i}/flatness/reference"));
        assert!((g / r - 1.0).abs() < 0.1, "increment flatness at separation {i}: {g} vs {r}");
    }
    // The reference records its flow, so the budget is there; its injection is positive.
    assert!(num(&format!("{turbulence}/budget/injection/reference")) > 0.1);
}
