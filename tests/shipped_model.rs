//! The shipped model `models/ns2d-divfree` with the shipped config `configs/ns2d-divfree.toml`,
//! through the real binary, as the quickstart runs it: the fields are divergence-free to round-off
//! and have the energy spectrum of the training data over the band that holds their energy, at the
//! training resolution (64²) and zero-shot at 128².

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use assert_cmd::Command;
use fieldflow_datasets::FieldReader;
use fieldflow_pde::Grid2d;
use fieldflow_pde::residuals::divergence_residual;
use fieldflow_pde::spectrum::mean_power_spectrum;
use ndarray::Axis;

/// Per-sample max |∇·u| and the mean spectrum's first shells of a velocity file.
fn divergence_and_spectrum(path: &Path) -> (f64, Vec<f64>) {
    let reader = FieldReader::open(path).unwrap();
    let [_, ny, nx] = reader.sample_shape();
    let grid = Grid2d::new(nx, ny, reader.metadata().lx, reader.metadata().ly).unwrap();
    let fields = reader.read_range(0..reader.len()).unwrap();
    let worst = fields.axis_iter(Axis(0)).map(|f| divergence_residual(&grid, f).unwrap().max).fold(0.0_f64, f64::max);
    (worst, mean_power_spectrum(&grid, fields.view()).unwrap().energy)
}

/// Generates `samples` fields at `resolution` with the shipped config into `dir`.
fn generate(dir: &Path, samples: usize, resolution: usize) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join(format!("gen-{resolution}.h5"));
    let assert = Command::cargo_bin("fieldflow")
        .unwrap()
        .current_dir(root)
        .args(["generate", "--quiet", "--config", "configs/ns2d-divfree.toml"])
        .args(["--set", &format!("samples={samples}"), "--set", &format!("batch={samples}")])
        .args(["--set", &format!("resolution={resolution}"), "--set", "preview.samples=2", "-o"])
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("max divergence"), "{stdout}");
    for what in ["vorticity", "speed", "spectrum"] {
        let png = dir.join(format!("gen-{resolution}-{what}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert_eq!(&bytes[1..4], b"PNG", "{}", png.display());
    }
    out
}

/// The tolerance: shell 1 holds 99.6% of the training data's energy and must match to 10%, as must
/// the total energy; shells 2 and 3 (together 0.35%) within 50% (measured with PCFM anchored on
/// the state: at most 8% at 64², 30% at 128²; anchored on the noise they were 1.5–1.9× too
/// energetic). Above shell 3 the data carry less than 1e-4 of their energy and the model is not
/// held to them (it overshoots there by a factor ~5 at shell 4; see the README).
fn assert_spectrum_matches(generated: &[f64], reference: &[f64], what: &str) {
    let total = |e: &[f64]| e.iter().sum::<f64>();
    let ratio = total(generated) / total(reference);
    assert!((0.9..=1.1).contains(&ratio), "{what}: total energy ratio {ratio}");
    let r1 = generated[1] / reference[1];
    assert!((0.9..=1.1).contains(&r1), "{what}: shell 1: E_gen/E_ref = {r1}");
    for shell in 2..=3 {
        let r = generated[shell] / reference[shell];
        assert!((0.67..=1.5).contains(&r), "{what}: shell {shell}: E_gen/E_ref = {r}");
    }
}

#[test]
fn shipped_model_gives_divergence_free_fields_with_the_training_spectrum_at_64_and_128() {
    let dir = tempfile::tempdir().unwrap();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ns2d-divfree/reference.h5");
    let (_, ref_spectrum) = divergence_and_spectrum(&reference);
    for (samples, resolution) in [(32, 64), (8, 128)] {
        let out = generate(dir.path(), samples, resolution);
        let (divergence, spectrum) = divergence_and_spectrum(&out);
        eprintln!(
            "{resolution}²: max |div u| = {divergence:.3e}; E_gen/E_ref shells 1-4: {:?}",
            (1..=4).map(|s| spectrum[s] / ref_spectrum[s]).collect::<Vec<_>>()
        );
        assert!(divergence <= 1e-10, "{resolution}²: max |div u| = {divergence:e}");
        assert_spectrum_matches(&spectrum, &ref_spectrum, &format!("{resolution}²"));
    }
}

/// The stored regression fields: `tests/data/ns2d-divfree-regression.h5` holds the first four
/// fields of the shipped config at seed 0 (written before the sampling pipeline moved into the
/// library, by the old `generate`; the new one gave the same bits on the same machine). Kernels
/// chosen at run time may round differently on another CPU, hence a relative tolerance of 1e-6.
/// A change that alters the numerics on purpose (a retrained model, another sampler default)
/// regenerates the file with
/// `scripts/fieldflow generate --config configs/ns2d-divfree.toml --set samples=4 --set batch=4
/// --set preview.samples=0 --set output.gzip=6 -o tests/data/ns2d-divfree-regression.h5 --force`
/// (and removes the `.xdmf` written beside it).
#[test]
fn the_shipped_config_reproduces_the_stored_fields() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("regression.h5");
    Command::cargo_bin("fieldflow")
        .unwrap()
        .current_dir(root)
        .args(["generate", "--quiet", "--config", "configs/ns2d-divfree.toml"])
        .args(["--set", "samples=4", "--set", "batch=4", "--set", "preview.samples=0", "-o"])
        .arg(&out)
        .assert()
        .success();
    let stored =
        FieldReader::open(root.join("tests/data/ns2d-divfree-regression.h5")).unwrap().read_range(0..4).unwrap();
    let fresh = FieldReader::open(&out).unwrap().read_range(0..4).unwrap();
    assert_eq!(stored.shape(), fresh.shape());
    let scale = stored.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let gap = stored.iter().zip(&fresh).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("stored vs fresh: max |difference| {gap:.3e}, max |field| {scale:.3e}");
    assert!(scale > 1e-3, "the stored fields are not empty");
    assert!(gap <= 1e-6 * scale, "the shipped config's fields moved by {gap:e} (relative {:e})", gap / scale);
}
