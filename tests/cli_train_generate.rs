//! `fieldflow datagen` → `train` → `generate` → `check` through the real binary.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{config, datagen, fieldflow, set_path};
use fieldflow_datasets::FieldReader;
use fieldflow_pde::Grid2d;
use fieldflow_pde::constraints::{Constraint, DarcyPde};
use fieldflow_pde::darcy::{DarcyOperator, FaceAverage};
use fieldflow_pde::residuals::divergence_residual;
use ndarray::{Axis, s};
use predicates::prelude::*;

/// Generates 8 velocity samples at 16² and trains the smoke model on them.
fn train_smoke(dir: &Path) -> PathBuf {
    let data = dir.join("data.h5");
    datagen("smoke-datagen.toml", &data, &["--set", "ns2d.output=\"velocity\"", "--set", "samples=8"]);
    let run = dir.join("run");
    fieldflow()
        .args(["train", "--quiet", "--config"])
        .arg(config("smoke-train.toml"))
        .args(["--set", &set_path("data.path", &data), "--set", &set_path("output.run_dir", &run)])
        .assert()
        .success()
        .stdout(predicate::str::contains("trained 30 steps on 6 samples (2 validation)"))
        .stdout(predicate::str::contains("step-00000030"));
    assert!(run.join("checkpoints/step-00000030/checkpoint.json").is_file());
    run
}

/// Max over samples of the spectral `max |∇·u|` of a generated file, and its shape.
fn max_divergence(path: &Path) -> (f64, [usize; 4]) {
    let reader = FieldReader::open(path).unwrap();
    assert_eq!(reader.metadata().channels, ["u", "v"]);
    let [c, ny, nx] = reader.sample_shape();
    let fields = reader.read_range(0..reader.len()).unwrap();
    let grid = Grid2d::new(nx, ny, reader.metadata().lx, reader.metadata().ly).unwrap();
    let mut worst = 0.0_f64;
    for sample in fields.axis_iter(Axis(0)) {
        assert!(sample.iter().all(|v| v.is_finite()));
        let r = divergence_residual(&grid, sample.slice(s![0..2, .., ..])).unwrap();
        worst = worst.max(r.max);
    }
    // The fields are not trivially zero: the flow moved the noise somewhere.
    assert!(fields.iter().map(|v| v.abs()).fold(0.0, f64::max) > 1e-3);
    (worst, [reader.len(), c, ny, nx])
}

fn generate(run: &Path, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    fieldflow()
        .args(["generate", "--quiet", "--config"])
        .arg(config("smoke-generate.toml"))
        .args(["--set", &set_path("model.run_dir", run), "-o"])
        .arg(out)
        .args(extra)
        .assert()
}

#[test]
fn datagen_train_generate_check_is_divergence_free_at_training_and_double_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let run = train_smoke(dir.path());

    let gen16 = dir.path().join("gen.h5");
    generate(&run, &gen16, &[]).success().stdout(predicate::str::contains("wrote 4 samples (16×16"));
    let (div, shape) = max_divergence(&gen16);
    assert_eq!(shape, [4, 2, 16, 16]);
    assert!(div <= 1e-10, "max divergence {div:e} after PCFM");
    fieldflow().arg("check").arg(&gen16).args(["--max-residual", "1e-10"]).assert().success();

    // Zero-shot on a 32² grid: the FNO is resolution-independent, PCFM projects on the new grid.
    let gen32 = dir.path().join("gen32.h5");
    generate(&run, &gen32, &["--set", "resolution=32"]).success();
    let (div, shape) = max_divergence(&gen32);
    assert_eq!(shape, [4, 2, 32, 32]);
    assert!(div <= 1e-10, "max divergence {div:e} after PCFM at 32²");
    fieldflow().arg("check").arg(&gen32).args(["--max-residual", "1e-10"]).assert().success();

    // Projection after an ordinary Heun solve is divergence-free too; plain sampling is not.
    let projected = dir.path().join("projected.h5");
    generate(&run, &projected, &["--set", "constraint.method=\"project\""]).success();
    assert!(max_divergence(&projected).0 <= 1e-10);
    let plain = dir.path().join("plain.h5");
    generate(&run, &plain, &["--set", "constraint.kind=\"none\""]).success();
    assert!(max_divergence(&plain).0 > 1e-6, "unconstrained samples of an untrained-ish model are not divergence-free");

    // PBFM's stochastic sampler: with no re-noising it is the Euler solver; re-noised it differs,
    // independently of the batch size; a projection after it is divergence-free; PCFM refuses it.
    let read = |path: &Path| FieldReader::open(path).unwrap().read_range(0..4).unwrap();
    let plain = ["--set", "constraint.kind=\"none\""];
    let euler = dir.path().join("euler.h5");
    generate(&run, &euler, &[&plain[..], &["--set", "solver.method=\"euler\""]].concat()).success();
    let stochastic = |out: &Path, extra: &[&str]| {
        generate(&run, out, &[&["--set", "solver.method=\"stochastic\""][..], extra].concat())
    };
    let tau0 = dir.path().join("tau0.h5");
    stochastic(&tau0, &[&plain[..], &["--set", "solver.renoise_threshold=0"]].concat()).success();
    let (a, b) = (read(&euler), read(&tau0));
    let scale = a.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let gap = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(gap <= 1e-6 * scale, "threshold 0 = Euler: max difference {gap:e} (scale {scale:e})");
    let renoised = dir.path().join("renoised.h5");
    stochastic(&renoised, &plain).success();
    let one_by_one = dir.path().join("renoised-batch1.h5");
    stochastic(&one_by_one, &[&plain[..], &["--set", "batch=1"]].concat()).success();
    let (c, d) = (read(&renoised), read(&one_by_one));
    assert!(c.iter().all(|v| v.is_finite()));
    let moved = a.iter().zip(&c).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(moved > 1e-3 * scale, "re-noising changes the samples: {moved:e}");
    let batch_gap = c.iter().zip(&d).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(batch_gap <= 1e-6 * scale, "batch size changed the re-noised samples by {batch_gap:e}");
    let projected = dir.path().join("renoised-projected.h5");
    stochastic(&projected, &["--set", "constraint.method=\"project\""]).success();
    assert!(max_divergence(&projected).0 <= 1e-10);
    let refused = dir.path().join("refused.h5");
    // PCFM corrections cannot ride on re-noised states (the earlier spelling of that combination).
    stochastic(&refused, &["--set", "constraint.method=\"pcfm\""])
        .code(2)
        .stderr(predicate::str::contains("solver.method"));
    assert!(!refused.exists());

    // Training again resumes from the finished run (nothing to do); --resume false refuses it.
    let data = dir.path().join("data.h5");
    let train = || {
        let mut cmd = fieldflow();
        cmd.args(["train", "--quiet", "--config"]).arg(config("smoke-train.toml")).args([
            "--set",
            &set_path("data.path", &data),
            "--set",
            &set_path("output.run_dir", &run),
        ]);
        cmd
    };
    train().assert().success().stdout(predicate::str::contains("resumed from step 30"));
    train().args(["--resume", "false"]).assert().code(2).stderr(predicate::str::contains("already holds checkpoints"));
}

#[test]
fn generate_with_a_missing_run_dir_fails_with_exit_2_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-run");
    let out = dir.path().join("gen.h5");
    generate(&missing, &out, &[]).code(2).stderr(predicate::str::contains("no-such-run"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no output file on failure");
}

#[test]
fn train_rejects_unknown_keys_and_missing_data_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    fieldflow()
        .args(["train", "--quiet", "--config"])
        .arg(config("smoke-train.toml"))
        .args(["--set", "model.widht=8", "--set", &set_path("output.run_dir", &run)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("smoke-train.toml").and(predicate::str::contains("model.widht")));
    let missing = dir.path().join("missing.h5");
    fieldflow()
        .args(["train", "--quiet", "--config"])
        .arg(config("smoke-train.toml"))
        .args(["--set", &set_path("data.path", &missing), "--set", &set_path("output.run_dir", &run)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.h5"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written on failure");
}

/// Constraints from the config, stacked with the divergence: a fixed kinetic energy (nonlinear),
/// fixed channel means, and values observed on every 4th grid point of a data file. Each holds in
/// the written fields (energy and means to 1e-8 relative, observations and divergence to
/// round-off), and a mismatched observation file is exit 2 naming the key.
#[test]
fn generate_stacks_energy_mean_and_observation_constraints_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let run = train_smoke(dir.path());
    let data = dir.path().join("data.h5");
    let observed = FieldReader::open(&data).unwrap().read_range(2..3).unwrap();
    let out = dir.path().join("stacked.h5");
    let observe = format!("constraint.observe={{ path = {:?}, sample = 2, stride = 4 }}", data.display().to_string());
    generate(
        &run,
        &out,
        &[
            "--set",
            "constraint.kinetic_energy=0.02",
            "--set",
            "constraint.mean=[0.01, -0.02]",
            "--set",
            &observe,
            "--set",
            "preview.samples=0",
        ],
    )
    .success();
    let (divergence, [n, _, ny, nx]) = max_divergence(&out);
    assert!(divergence <= 1e-10, "max |div u| = {divergence:e}");
    let fields = FieldReader::open(&out).unwrap().read_range(0..n).unwrap();
    for sample in fields.axis_iter(Axis(0)) {
        let energy = 0.5 * sample.iter().map(|v| v * v).sum::<f64>() / (nx * ny) as f64;
        assert!((energy / 0.02 - 1.0).abs() < 1e-8, "kinetic energy {energy}");
        for (c, target) in [(0, 0.01), (1, -0.02)] {
            let mean = sample.index_axis(Axis(0), c).mean().unwrap();
            assert!((mean - target).abs() < 1e-8 * 0.2, "mean of channel {c}: {mean}");
        }
        for ((ch, y, x), v) in sample.indexed_iter() {
            if y % 4 == 0 && x % 4 == 0 {
                let want = observed[[0, ch, y, x]];
                assert!((v - want).abs() < 1e-10 * (1.0 + want.abs()), "({ch}, {y}, {x}): {v} vs {want}");
            }
        }
    }
    let bad = dir.path().join("bad.h5");
    generate(&run, &bad, &["--set", &observe, "--set", "resolution=32"])
        .code(2)
        .stderr(predicate::str::contains("constraint.observe.path"));
    assert!(!bad.exists());
}

/// `model.leray = true` ends the network with a Leray projection: with a divergence-free source
/// the whole flow, and so every sample, is divergence-free without any constraint at sampling
/// (to the f32 round-off of the network); on vorticity data the key is exit 2.
#[test]
fn a_leray_output_layer_makes_unconstrained_samples_divergence_free() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.h5");
    datagen("smoke-datagen.toml", &data, &["--set", "ns2d.output=\"velocity\"", "--set", "samples=8"]);
    let run = dir.path().join("run");
    let train = |extra: &[&str]| {
        fieldflow()
            .args(["train", "--quiet", "--config"])
            .arg(config("smoke-train.toml"))
            .args(["--set", &set_path("data.path", &data), "--set", &set_path("output.run_dir", &run)])
            .args([
                "--set",
                "model.leray=true",
                "--set",
                "noise.kind=\"divergence_free_gp\"",
                "--set",
                "noise.sigma=10.0",
            ])
            .args(extra)
            .assert()
    };
    train(&[]).success();
    let out = dir.path().join("leray.h5");
    generate(&run, &out, &["--set", "constraint.kind=\"none\"", "--set", "preview.samples=0"]).success();
    let reader = FieldReader::open(&out).unwrap();
    let [_, ny, nx] = reader.sample_shape();
    let grid = Grid2d::new(nx, ny, 1.0, 1.0).unwrap();
    for sample in reader.read_range(0..reader.len()).unwrap().axis_iter(Axis(0)) {
        let r = divergence_residual(&grid, sample).unwrap();
        assert!(r.relative < 1e-5, "relative divergence {:e}", r.relative);
    }
    let vorticity = dir.path().join("vorticity.h5");
    datagen("smoke-datagen.toml", &vorticity, &["--set", "samples=4"]);
    train(&["--set", &set_path("data.path", &vorticity), "--force"])
        .code(2)
        .stderr(predicate::str::contains("model.leray"));
}

/// A resumed run keeps the normalisation its weights were trained with, even when the data file
/// (and so its statistics) changed in between.
#[test]
fn a_resumed_run_keeps_its_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let run = train_smoke(dir.path());
    let other = dir.path().join("other.h5");
    datagen("smoke-datagen.toml", &other, &["--set", "ns2d.output=\"velocity\"", "--set", "samples=8", "--seed", "99"]);
    fieldflow()
        .args(["train", "--quiet", "--config"])
        .arg(config("smoke-train.toml"))
        .args(["--set", &set_path("data.path", &other), "--set", &set_path("output.run_dir", &run)])
        .args(["--set", "train.steps=32"])
        .assert()
        .success()
        .stdout(predicate::str::contains("resumed from step 30"));
    let norm = |step: &str| {
        let text = std::fs::read_to_string(run.join(format!("checkpoints/{step}/checkpoint.json"))).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["normalization"].clone()
    };
    assert!(!norm("step-00000030").is_null());
    assert_eq!(norm("step-00000032"), norm("step-00000030"));
}

/// Darcy pairs: `datagen` with `darcy.output = "pair"` → `train` a joint model of `(a, u)` →
/// `generate` with the Darcy PDE constraint by PCFM: the pairs obey the discrete equation to
/// 1e-8 (`check` reads the pair layout for the data); plain sampling of the same model does not.
#[test]
fn darcy_pairs_generated_with_the_pde_constraint_pass_the_darcy_check() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.h5");
    datagen("smoke-darcy-pair.toml", &data, &[]);
    let reader = FieldReader::open(&data).unwrap();
    assert_eq!(reader.metadata().channels, ["a", "u"]);
    assert!(!reader.has_coefficients());
    // The data themselves pass the check read from the pair layout.
    fieldflow().args(["check", "--max-residual", "1e-8"]).arg(&data).assert().success();
    let run = dir.path().join("run");
    fieldflow()
        .args(["train", "--quiet", "--config"])
        .arg(config("smoke-train.toml"))
        .args(["--set", &set_path("data.path", &data), "--set", &set_path("output.run_dir", &run)])
        .assert()
        .success();
    // ‖h‖∞ of the Darcy pair constraint (interior: A(a)u − f; boundary: u), the largest over the
    // samples (`check` measures the interior equation only).
    let residual = |path: &Path| {
        let r = FieldReader::open(path).unwrap();
        let s = r.sample_shape()[1];
        let op = DarcyOperator::new(s, FaceAverage::Arithmetic).unwrap();
        let pde = DarcyPde::new(op, ndarray::Array2::from_elem((s, s), 1.0)).unwrap();
        let fields = r.read_range(0..r.len()).unwrap();
        fields
            .axis_iter(Axis(0))
            .map(|pair| pde.residual(pair).unwrap().iter().fold(0.0_f64, |m, v| m.max(v.abs())))
            .fold(0.0_f64, f64::max)
    };
    assert!(residual(&data) < 1e-9, "data: {:e}", residual(&data));
    let constrained = dir.path().join("darcy.h5");
    generate(&run, &constrained, &["--set", "constraint.kind=\"darcy\"", "--set", "preview.samples=0"]).success();
    let free = dir.path().join("free.h5");
    generate(&run, &free, &["--set", "constraint.kind=\"none\"", "--set", "preview.samples=0"]).success();
    let (got, base) = (residual(&constrained), residual(&free));
    eprintln!("Darcy residual: PCFM {got:.3e}, unconstrained {base:.3e}");
    assert!(got <= 1e-8, "PCFM: {got:e}");
    assert!(base > 1e-3, "unconstrained: {base:e}");
    // `check` measures generated pairs whatever the sign of their coefficient (a 30-step model
    // does not promise a > 0) and reports how many are admissible.
    let checked = fieldflow().args(["check", "--json", "--max-residual", "1e-8"]).arg(&constrained).assert().success();
    let checked: serde_json::Value = serde_json::from_slice(&checked.get_output().stdout).unwrap();
    let pairs = FieldReader::open(&constrained).unwrap().read_range(0..4).unwrap();
    let mins: Vec<f64> = pairs
        .axis_iter(Axis(0))
        .map(|p| p.index_axis(Axis(0), 0).iter().copied().fold(f64::INFINITY, f64::min))
        .collect();
    let nonpositive = mins.iter().filter(|&&m| m <= 0.0).count() as u64;
    assert_eq!(checked["nonpositive_coefficient_samples"].as_u64(), Some(nonpositive), "{checked}");
    assert_eq!(checked["coefficient_min"].as_f64(), Some(mins.iter().copied().fold(f64::INFINITY, f64::min)));
    // `darcy_projection = "solve"` keeps the generated coefficient and solves for u: after an
    // ordinary solve, a is the unconstrained a bit for bit and the equation holds; a coefficient
    // that is not positive everywhere is refused, saying why once.
    let solved = dir.path().join("solved.h5");
    let outcome = generate(
        &run,
        &solved,
        &[
            "--set",
            "constraint.kind=\"darcy\"",
            "--set",
            "constraint.method=\"project\"",
            "--set",
            "constraint.darcy_projection=\"solve\"",
            "--set",
            "preview.samples=0",
        ],
    );
    let free_fields = FieldReader::open(&free).unwrap().read_range(0..4).unwrap();
    if free_fields.slice(s![.., 0, .., ..]).iter().all(|&a| a > 0.0) {
        outcome.success();
        let fields = FieldReader::open(&solved).unwrap().read_range(0..4).unwrap();
        assert_eq!(fields.slice(s![.., 0, .., ..]), free_fields.slice(s![.., 0, .., ..]));
        assert!(residual(&solved) <= 1e-8, "solve: {:e}", residual(&solved));
    } else {
        let stderr = String::from_utf8(outcome.failure().get_output().stderr.clone()).unwrap();
        assert_eq!(stderr.matches("strictly positive").count(), 1, "{stderr}");
        assert!(!solved.exists());
    }
    // A velocity model cannot take the Darcy constraint.
    let velocity_dir = dir.path().join("velocity");
    std::fs::create_dir(&velocity_dir).unwrap();
    let velocity_run = train_smoke(&velocity_dir);
    let bad = dir.path().join("bad.h5");
    generate(&velocity_run, &bad, &["--set", "constraint.kind=\"darcy\""])
        .code(2)
        .stderr(predicate::str::contains("constraint.kind"));
    assert!(!bad.exists());
}

/// The physics descriptor of the data decides which PBFM residual fits: the Darcy residual on
/// velocity data and the divergence on Darcy pairs are refused before any training, naming the
/// key and the channels, and leave no run directory.
#[test]
fn pbfm_residuals_that_do_not_fit_the_data_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let velocity = dir.path().join("velocity.h5");
    datagen("smoke-datagen.toml", &velocity, &["--set", "ns2d.output=\"velocity\"", "--set", "samples=4"]);
    let pairs = dir.path().join("pairs.h5");
    datagen("smoke-darcy-pair.toml", &pairs, &[]);
    for (data, residual, needs) in [(&velocity, "darcy", "[a, u]"), (&pairs, "divergence", "[u, v]")] {
        let run = dir.path().join(format!("run-{residual}"));
        fieldflow()
            .args(["train", "--quiet", "--config"])
            .arg(config("smoke-train-pbfm.toml"))
            .args(["--set", &set_path("data.path", data), "--set", &set_path("output.run_dir", &run)])
            .args(["--set", &format!("train.pbfm.residual=\"{residual}\"")])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("train.pbfm.residual"))
            .stderr(predicate::str::contains(needs));
        assert!(!run.join("checkpoints").exists(), "{}", run.display());
    }
}
