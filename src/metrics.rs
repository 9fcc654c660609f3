//! Evaluation metrics for generated fields, in `f64` on `[N, C, ny, nx]` arrays.
//!
//! - **Constraint error** ([`constraint_errors`]): the per-sample `max |h(u)|` of a
//!   [`Constraint`], with its max and mean over the set.
//! - **Ensemble statistics** (PCFM / ECI papers): [`mmse`], the mean squared error between the
//!   pointwise sample mean of the generated set and that of the reference set, and [`smse`], the
//!   same for the pointwise standard deviation (population std, `1/N`). The two sets may have
//!   different sizes but must share `[C, ny, nx]`.
//! - **Distribution metrics** (Functional Flow Matching): [`spectrum_mse`], the MSE between the
//!   mean shell power spectra ([`mean_power_spectrum`]) of the two sets, and [`density_mse`], the
//!   MSE between the histograms (as densities) of all pointwise values, with bins shared by both
//!   sets. [`spectrum_relative_error`] is the relative L2 error of the mean spectrum over the
//!   resolved band ([`resolved_shells`]).
//! - **PDEBench errors** between paired predictions and truths: [`nrmse`], [`crmse`], [`brmse`],
//!   [`frmse`] (see each function for the exact definition).
//!
//! - **Turbulence statistics** ([`turbulence`]): per-shell spectrum ratios, the vorticity PDF
//!   and flatness, velocity-increment structure functions, per-sample energy / enstrophy /
//!   palinstrophy distributions and the energy budget of a forced flow.
//!
//! Every function checks shapes and reports [`MetricsError::Shape`] for a mismatch and
//! [`MetricsError::Empty`] for an empty set.

use fieldflow_pde::constraints::Constraint;
use fieldflow_pde::grid::signed_index;
use fieldflow_pde::spectrum::mean_power_spectrum;
use fieldflow_pde::{Grid2d, PdeError};
use ndarray::{Array3, ArrayView4, Axis, Zip};
use rayon::prelude::*;

pub mod turbulence;

/// What went wrong computing a metric.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Arrays whose shapes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A set with no samples (or no points).
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A bad parameter (e.g. zero histogram bins).
    #[error("bad parameter: {0}")]
    Parameter(String),
    /// An error from the numerics.
    #[error(transparent)]
    Pde(#[from] PdeError),
}

/// Result of a metrics computation.
pub type Result<T> = std::result::Result<T, MetricsError>;

/// Per-sample errors with their maximum and mean.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorSummary {
    /// One value per sample, in order.
    pub per_sample: Vec<f64>,
    /// The largest per-sample value.
    pub max: f64,
    /// The mean of the per-sample values.
    pub mean: f64,
}

impl ErrorSummary {
    /// Summarises per-sample values.
    ///
    /// # Errors
    /// [`MetricsError::Empty`] when there are none.
    pub fn from_values(per_sample: Vec<f64>) -> Result<Self> {
        if per_sample.is_empty() {
            return Err(MetricsError::Empty("sample set"));
        }
        let max = per_sample.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = per_sample.iter().sum::<f64>() / per_sample.len() as f64;
        Ok(Self { per_sample, max, mean })
    }

    /// The index of the sample with the largest value (the first one on ties).
    pub fn worst(&self) -> usize {
        self.per_sample.iter().enumerate().fold(0, |best, (i, &v)| if v > self.per_sample[best] { i } else { best })
    }
}

fn check_set(what: &'static str, a: &ArrayView4<f64>) -> Result<()> {
    if a.is_empty() {
        return Err(MetricsError::Empty(what));
    }
    Ok(())
}

fn check_same_field_shape(a: &ArrayView4<f64>, b: &ArrayView4<f64>) -> Result<()> {
    check_set("generated set", a)?;
    check_set("reference set", b)?;
    if a.shape()[1..] != b.shape()[1..] {
        return Err(MetricsError::Shape(format!(
            "generated samples are {:?} but reference samples are {:?}",
            &a.shape()[1..],
            &b.shape()[1..]
        )));
    }
    Ok(())
}

fn check_paired(pred: &ArrayView4<f64>, truth: &ArrayView4<f64>) -> Result<()> {
    check_set("prediction set", pred)?;
    check_set("truth set", truth)?;
    if pred.shape() != truth.shape() {
        return Err(MetricsError::Shape(format!(
            "predictions are {:?} but truths are {:?}",
            pred.shape(),
            truth.shape()
        )));
    }
    Ok(())
}

/// `max |h(u)|` of `constraint` for every sample of `samples` (computed in parallel).
///
/// # Errors
/// [`MetricsError::Empty`] for no samples; [`MetricsError::Pde`] when a sample does not have the
/// constraint's shape or is not finite.
pub fn constraint_errors(constraint: &dyn Constraint, samples: ArrayView4<f64>) -> Result<ErrorSummary> {
    if samples.shape()[0] == 0 {
        return Err(MetricsError::Empty("sample set"));
    }
    let values: Vec<f64> = samples
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|u| constraint.max_violation(u))
        .collect::<std::result::Result<_, PdeError>>()?;
    ErrorSummary::from_values(values)
}

/// Pointwise mean and population standard deviation over the samples, `[C, ny, nx]` each.
fn mean_std(a: &ArrayView4<f64>) -> (Array3<f64>, Array3<f64>) {
    let n = a.shape()[0] as f64;
    let mean = a.sum_axis(Axis(0)) / n;
    let mut var = Array3::<f64>::zeros(mean.raw_dim());
    for s in a.axis_iter(Axis(0)) {
        Zip::from(&mut var).and(&s).and(&mean).for_each(|v, &x, &m| *v += (x - m) * (x - m));
    }
    (mean, var.mapv(|v| (v / n).sqrt()))
}

fn mse3(a: &Array3<f64>, b: &Array3<f64>) -> f64 {
    Zip::from(a).and(b).fold(0.0, |acc, &x, &y| acc + (x - y) * (x - y)) / a.len() as f64
}

/// MMSE: the mean squared error between the pointwise sample mean of `generated` and that of
/// `reference` (averaged over channels and grid points).
///
/// # Errors
/// [`MetricsError::Empty`] / [`MetricsError::Shape`] unless both sets are non-empty with equal
/// `[C, ny, nx]`.
pub fn mmse(generated: ArrayView4<f64>, reference: ArrayView4<f64>) -> Result<f64> {
    check_same_field_shape(&generated, &reference)?;
    Ok(mse3(&mean_std(&generated).0, &mean_std(&reference).0))
}

/// SMSE: the mean squared error between the pointwise (population) standard deviation of
/// `generated` and that of `reference`.
///
/// # Errors
/// As [`mmse`].
pub fn smse(generated: ArrayView4<f64>, reference: ArrayView4<f64>) -> Result<f64> {
    check_same_field_shape(&generated, &reference)?;
    Ok(mse3(&mean_std(&generated).1, &mean_std(&reference).1))
}

/// Energy-spectrum MSE: the mean over shells of `(E_gen(k) − E_ref(k))²`, where `E` is the mean
/// shell power spectrum of a set ([`mean_power_spectrum`], all channels summed).
///
/// With `log = true` the spectra are compared as `ln(E + ε)` with
/// `ε = 1e-12 · max_k E_ref(k)` (a floor so that empty shells do not dominate), which weighs all
/// scales alike instead of being dominated by the energetic large scales.
///
/// # Errors
/// As [`mmse`], and [`MetricsError::Shape`] / [`MetricsError::Pde`] if the field is not
/// `(grid.ny, grid.nx)`.
pub fn spectrum_mse(grid: &Grid2d, generated: ArrayView4<f64>, reference: ArrayView4<f64>, log: bool) -> Result<f64> {
    check_same_field_shape(&generated, &reference)?;
    let g = mean_power_spectrum(grid, generated)?.energy;
    let r = mean_power_spectrum(grid, reference)?.energy;
    let (g, r) = if log {
        let eps = 1e-12 * r.iter().copied().fold(0.0, f64::max);
        let eps = if eps > 0.0 { eps } else { f64::MIN_POSITIVE };
        (g.iter().map(|e| (e + eps).ln()).collect::<Vec<_>>(), r.iter().map(|e| (e + eps).ln()).collect())
    } else {
        (g, r)
    };
    Ok(g.iter().zip(&r).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / g.len().max(1) as f64)
}

/// The resolved band of shell spectra on `grid`: the shells `n ≥ 1` whose whole annulus
/// `[(n − ½)Δk, (n + ½)Δk)` lies inside the grid's wavenumber rectangle, i.e.
/// `(n + ½)Δk ≤ min(π nx / Lx, π ny / Ly)` with `Δk = 2π / max(Lx, Ly)` the shell width of
/// [`mean_power_spectrum`]. The mean (shell 0) is left out. Empty for grids too coarse to resolve
/// a full shell.
pub fn resolved_shells(grid: &Grid2d) -> std::ops::RangeInclusive<usize> {
    let dk = 2.0 * std::f64::consts::PI / grid.lx().max(grid.ly());
    let kr =
        (std::f64::consts::PI * grid.nx() as f64 / grid.lx()).min(std::f64::consts::PI * grid.ny() as f64 / grid.ly());
    // Empty (1..=0) when not even shell 1 is resolved.
    1..=(kr / dk - 0.5).floor().max(0.0) as usize
}

/// Relative L2 error of the mean shell spectrum over the resolved band ([`resolved_shells`]):
/// `‖E_gen − E_ref‖₂ / ‖E_ref‖₂` over those shells, where `E` is the mean shell power spectrum of
/// a set ([`mean_power_spectrum`], all channels summed). 0 when both spectra vanish on the band,
/// `+∞` when only the reference does.
///
/// # Errors
/// As [`spectrum_mse`].
pub fn spectrum_relative_error(grid: &Grid2d, generated: ArrayView4<f64>, reference: ArrayView4<f64>) -> Result<f64> {
    check_same_field_shape(&generated, &reference)?;
    let g = mean_power_spectrum(grid, generated)?.energy;
    let r = mean_power_spectrum(grid, reference)?.energy;
    let band = resolved_shells(grid);
    let (mut err, mut norm) = (0.0, 0.0);
    for n in band.filter(|&n| n < r.len()) {
        err += (g[n] - r[n]) * (g[n] - r[n]);
        norm += r[n] * r[n];
    }
    Ok(if norm > 0.0 {
        (err / norm).sqrt()
    } else if err > 0.0 {
        f64::INFINITY
    } else {
        0.0
    })
}

/// Pointwise-density MSE: all values of each set are histogrammed into `bins` equal bins spanning
/// `[min, max]` of both sets together, each histogram is normalised to a density
/// (`count / (total · width)`), and the result is the mean over bins of the squared difference.
///
/// # Errors
/// As [`mmse`]; [`MetricsError::Parameter`] for `bins == 0` or non-finite values.
pub fn density_mse(generated: ArrayView4<f64>, reference: ArrayView4<f64>, bins: usize) -> Result<f64> {
    check_same_field_shape(&generated, &reference)?;
    if bins == 0 {
        return Err(MetricsError::Parameter("histogram needs at least one bin".into()));
    }
    let (lo, hi) = generated
        .iter()
        .chain(reference.iter())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(MetricsError::Parameter("values must be finite".into()));
    }
    // A degenerate range (all values equal) gets a unit-width bin around the value.
    let (lo, width) = if hi > lo { (lo, (hi - lo) / bins as f64) } else { (lo - 0.5, 1.0 / bins as f64) };
    let density = |a: &ArrayView4<f64>| {
        let mut h = vec![0.0; bins];
        for &v in a {
            let b = (((v - lo) / width) as usize).min(bins - 1);
            h[b] += 1.0;
        }
        let norm = a.len() as f64 * width;
        h.iter_mut().for_each(|c| *c /= norm);
        h
    };
    let (g, r) = (density(&generated), density(&reference));
    Ok(g.iter().zip(&r).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / bins as f64)
}

/// Applies `f(pred_field, true_field)` to every `(sample, channel)` pair and averages.
fn per_field_mean(
    pred: &ArrayView4<f64>,
    truth: &ArrayView4<f64>,
    f: impl Fn(ndarray::ArrayView2<f64>, ndarray::ArrayView2<f64>) -> Result<f64> + Sync,
) -> Result<f64> {
    let (n, c) = (pred.shape()[0], pred.shape()[1]);
    let values: Vec<f64> = (0..n * c)
        .into_par_iter()
        .map(|k| {
            let (i, ch) = (k / c, k % c);
            f(pred.slice(ndarray::s![i, ch, .., ..]), truth.slice(ndarray::s![i, ch, .., ..]))
        })
        .collect::<Result<_>>()?;
    Ok(values.iter().sum::<f64>() / values.len() as f64)
}

/// PDEBench's nRMSE: `‖pred − true‖₂ / ‖true‖₂` over the grid for every sample and channel,
/// averaged over samples and channels. A field with `‖true‖₂ = 0` contributes 0 if the prediction
/// is exact and `+∞` otherwise.
///
/// # Errors
/// [`MetricsError::Empty`] / [`MetricsError::Shape`] unless `pred` and `truth` are non-empty with
/// the same shape.
pub fn nrmse(pred: ArrayView4<f64>, truth: ArrayView4<f64>) -> Result<f64> {
    check_paired(&pred, &truth)?;
    per_field_mean(&pred, &truth, |p, t| {
        let err = Zip::from(&p).and(&t).fold(0.0, |acc, &a, &b| acc + (a - b) * (a - b)).sqrt();
        let norm = t.iter().map(|v| v * v).sum::<f64>().sqrt();
        Ok(if norm > 0.0 {
            err / norm
        } else if err > 0.0 {
            f64::INFINITY
        } else {
            0.0
        })
    })
}

/// cRMSE (error of the conserved quantity): `sqrt(mean over samples of (⟨pred⟩ − ⟨true⟩)²)` with
/// `⟨·⟩` the spatial mean, per channel, averaged over channels.
///
/// # Errors
/// As [`nrmse`].
pub fn crmse(pred: ArrayView4<f64>, truth: ArrayView4<f64>) -> Result<f64> {
    check_paired(&pred, &truth)?;
    let (n, c) = (pred.shape()[0], pred.shape()[1]);
    let mut total = 0.0;
    for ch in 0..c {
        let mut acc = 0.0;
        for i in 0..n {
            let p = pred.slice(ndarray::s![i, ch, .., ..]).mean().unwrap_or(0.0);
            let t = truth.slice(ndarray::s![i, ch, .., ..]).mean().unwrap_or(0.0);
            acc += (p - t) * (p - t);
        }
        total += (acc / n as f64).sqrt();
    }
    Ok(total / c as f64)
}

/// bRMSE: the RMS error over the boundary ring (first and last row and column, each point
/// counted once) of every sample and channel, averaged.
///
/// # Errors
/// As [`nrmse`].
pub fn brmse(pred: ArrayView4<f64>, truth: ArrayView4<f64>) -> Result<f64> {
    check_paired(&pred, &truth)?;
    let (ny, nx) = (pred.shape()[2], pred.shape()[3]);
    per_field_mean(&pred, &truth, |p, t| {
        let (mut acc, mut count) = (0.0, 0usize);
        for ((i, j), &a) in p.indexed_iter() {
            if i == 0 || j == 0 || i + 1 == ny || j + 1 == nx {
                let d = a - t[[i, j]];
                acc += d * d;
                count += 1;
            }
        }
        Ok((acc / count as f64).sqrt())
    })
}

/// PDEBench's default Fourier bands in `|k|` index units: low `[0, 4]`, mid `[5, 12]`,
/// high `[13, ∞)` (inclusive bounds).
pub const PDEBENCH_BANDS: [(usize, usize); 3] = [(0, 4), (5, 12), (13, usize::MAX)];

/// fRMSE per Fourier band: for the error `e = pred − true` of every sample and channel, the band
/// value is `sqrt(Σ_{k in band} |ê_k|² / (nx ny)²)`, where `ê` is the 2-D DFT, the sum runs over
/// all modes `(kx, ky)` (signed integer mode numbers) whose `round(sqrt(kx² + ky²))` lies in the
/// band (inclusive bounds). By Parseval the squares of the bands sum to the mean of `e²` when the
/// bands cover every mode. Averaged over samples and channels; one value per band, in order.
/// Use [`PDEBENCH_BANDS`] for PDEBench's low/mid/high split.
///
/// # Errors
/// As [`nrmse`]; [`MetricsError::Pde`] for odd grid sizes (the FFT needs even `nx`, `ny`).
pub fn frmse(pred: ArrayView4<f64>, truth: ArrayView4<f64>, bands: &[(usize, usize)]) -> Result<Vec<f64>> {
    check_paired(&pred, &truth)?;
    let (n, c, ny, nx) = (pred.shape()[0], pred.shape()[1], pred.shape()[2], pred.shape()[3]);
    let grid = Grid2d::new(nx, ny, 1.0, 1.0)?;
    let norm = 1.0 / ((nx * ny) as f64).powi(2);
    let per_field: Vec<Vec<f64>> = (0..n * c)
        .into_par_iter()
        .map(|k| {
            let (i, ch) = (k / c, k % c);
            let e = &pred.slice(ndarray::s![i, ch, .., ..]) - &truth.slice(ndarray::s![i, ch, .., ..]);
            let spec = grid.fft(e.view())?;
            let mut acc = vec![0.0; bands.len()];
            for ((iy, jx), v) in spec.indexed_iter() {
                // Real FFT: columns other than 0 and nx/2 stand for two conjugate modes.
                let weight = if jx == 0 || jx == nx / 2 { 1.0 } else { 2.0 };
                let ky = signed_index(iy, ny) as f64;
                let shell = (jx as f64).hypot(ky).round() as usize;
                for (b, &(lo, hi)) in bands.iter().enumerate() {
                    if (lo..=hi).contains(&shell) {
                        acc[b] += weight * norm * v.norm_sqr();
                    }
                }
            }
            Ok(acc.into_iter().map(f64::sqrt).collect())
        })
        .collect::<Result<_>>()?;
    let mut out = vec![0.0; bands.len()];
    for f in &per_field {
        out.iter_mut().zip(f).for_each(|(o, v)| *o += v);
    }
    out.iter_mut().for_each(|o| *o /= per_field.len() as f64);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use fieldflow_pde::constraints::DivergenceFree;
    use ndarray::Array4;
    use std::f64::consts::TAU;

    fn set(n: usize, c: usize, ny: usize, nx: usize, seed: usize) -> Array4<f64> {
        Array4::from_shape_fn((n, c, ny, nx), |(s, ch, i, j)| {
            ((s * 7 + seed * 13 + 1) as f64 * 0.37 + ch as f64 * 1.3 + i as f64 * 0.71 + j as f64 * 1.19).sin()
                + 0.3 * ((s + 2) as f64 * (i + 2 * j) as f64 * 0.11).cos()
        })
    }

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{a} vs {b}");
    }

    #[test]
    fn identical_sets_score_zero_everywhere() {
        let a = set(5, 2, 8, 8, 0);
        let g = Grid2d::square(8, 1.0).unwrap();
        assert_eq!(mmse(a.view(), a.view()).unwrap(), 0.0);
        assert_eq!(smse(a.view(), a.view()).unwrap(), 0.0);
        assert_eq!(spectrum_mse(&g, a.view(), a.view(), false).unwrap(), 0.0);
        assert_eq!(spectrum_mse(&g, a.view(), a.view(), true).unwrap(), 0.0);
        assert_eq!(density_mse(a.view(), a.view(), 16).unwrap(), 0.0);
        assert_eq!(nrmse(a.view(), a.view()).unwrap(), 0.0);
        assert_eq!(crmse(a.view(), a.view()).unwrap(), 0.0);
        assert_eq!(brmse(a.view(), a.view()).unwrap(), 0.0);
        assert!(frmse(a.view(), a.view(), &PDEBENCH_BANDS).unwrap().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn constant_offset_gives_mmse_c_squared_and_zero_smse() {
        let a = set(6, 2, 8, 8, 1);
        let b = a.mapv(|v| v + 0.5);
        close(mmse(b.view(), a.view()).unwrap(), 0.25, 1e-12);
        assert!(smse(b.view(), a.view()).unwrap() < 1e-24);
        // The offset is the conserved-quantity error and the boundary error.
        close(crmse(b.view(), a.view()).unwrap(), 0.5, 1e-12);
        close(brmse(b.view(), a.view()).unwrap(), 0.5, 1e-12);
    }

    #[test]
    fn scaled_set_gives_predicted_smse() {
        let a = set(7, 1, 8, 8, 2);
        let s = 1.5;
        let b = a.mapv(|v| s * v);
        let (_, std_a) = mean_std(&a.view());
        let expected = (s - 1.0) * (s - 1.0) * std_a.iter().map(|v| v * v).sum::<f64>() / std_a.len() as f64;
        assert!(expected > 1e-3);
        close(smse(b.view(), a.view()).unwrap(), expected, 1e-12);
    }

    #[test]
    fn nrmse_of_ten_percent_overshoot_is_a_tenth() {
        let a = set(4, 3, 8, 8, 3);
        let b = a.mapv(|v| 1.1 * v);
        close(nrmse(b.view(), a.view()).unwrap(), 0.1, 1e-12);
    }

    #[test]
    fn frmse_of_a_single_mode_error_lands_in_its_band_only() {
        let (n, ny, nx) = (2, 32, 32);
        let truth = set(n, 1, ny, nx, 4);
        // |k| = 2 → low; |(3, 4)| = 5 and 8 → mid; 14 and |(9, 9)| ≈ 12.7 → 13 → high.
        for ((mx, my), band) in [((2usize, 0usize), 0usize), ((3, 4), 1), ((8, 0), 1), ((0, 14), 2), ((9, 9), 2)] {
            let mode = (mx, my);
            let pred = Array4::from_shape_fn((n, 1, ny, nx), |(s, c, i, j)| {
                let phase = TAU * (mx as f64 * j as f64 / nx as f64 + my as f64 * i as f64 / ny as f64);
                truth[[s, c, i, j]] + phase.cos()
            });
            let f = frmse(pred.view(), truth.view(), &PDEBENCH_BANDS).unwrap();
            for (b, v) in f.iter().enumerate() {
                if b == band {
                    // RMS of cos is 1/√2.
                    close(*v, 0.5_f64.sqrt(), 1e-10);
                } else {
                    assert!(*v < 1e-12, "mode {mode:?}: band {b} = {v}");
                }
            }
        }
    }

    #[test]
    fn spectrum_mse_of_a_doubled_set_is_predicted() {
        let a = set(3, 2, 16, 16, 7);
        let b = a.mapv(|v| 2.0 * v);
        let g = Grid2d::square(16, 1.0).unwrap();
        let e = mean_power_spectrum(&g, a.view()).unwrap().energy;
        // Doubling the field quadruples its spectrum: (4E − E)² = 9E².
        let expected = 9.0 * e.iter().map(|v| v * v).sum::<f64>() / e.len() as f64;
        close(spectrum_mse(&g, b.view(), a.view(), false).unwrap(), expected, 1e-10);
        // In log space the difference is ln 4 wherever E ≫ ε.
        let log = spectrum_mse(&g, b.view(), a.view(), true).unwrap();
        assert!(log <= 4.0_f64.ln().powi(2) * (1.0 + 1e-9), "{log}");
    }

    #[test]
    fn density_and_spectrum_see_a_change() {
        let a = set(4, 1, 16, 16, 5);
        let b = a.mapv(|v| 2.0 * v + 1.0);
        let g = Grid2d::square(16, 1.0).unwrap();
        assert!(density_mse(b.view(), a.view(), 10).unwrap() > 0.0);
        assert!(spectrum_mse(&g, b.view(), a.view(), false).unwrap() > 0.0);
        assert!(spectrum_mse(&g, b.view(), a.view(), true).unwrap() > 0.0);
    }

    #[test]
    fn constraint_errors_of_divergence_free_fields_are_round_off() {
        let g = Grid2d::square(16, 1.0).unwrap();
        let mut u = Array4::zeros((3, 2, 16, 16));
        for s in 0..3 {
            let amp = (s + 1) as f64;
            u.slice_mut(ndarray::s![s, 0, .., ..]).assign(&g.field_from_fn(|_, y| amp * (TAU * y).sin()));
            u.slice_mut(ndarray::s![s, 1, .., ..]).assign(&g.field_from_fn(|x, _| (TAU * x).cos()));
        }
        let c = DivergenceFree::new(g.clone());
        let e = constraint_errors(&c, u.view()).unwrap();
        assert_eq!(e.per_sample.len(), 3);
        assert!(e.max < 1e-10 && e.mean <= e.max, "{e:?}");
        // A divergent sample is the worst one.
        u.slice_mut(ndarray::s![1, 0, .., ..]).assign(&g.field_from_fn(|x, _| (TAU * x).sin()));
        let e = constraint_errors(&c, u.view()).unwrap();
        assert_eq!(e.worst(), 1);
        assert!(e.max > 1.0);
    }

    #[test]
    fn bad_shapes_and_empty_sets_are_errors() {
        let a = set(3, 2, 8, 8, 6);
        let b = set(3, 1, 8, 8, 6);
        let c = set(4, 2, 8, 8, 6);
        let empty = Array4::<f64>::zeros((0, 2, 8, 8));
        assert!(matches!(mmse(a.view(), b.view()), Err(MetricsError::Shape(_))));
        assert!(matches!(smse(a.view(), b.view()), Err(MetricsError::Shape(_))));
        assert!(matches!(density_mse(a.view(), b.view(), 4), Err(MetricsError::Shape(_))));
        assert!(matches!(density_mse(a.view(), a.view(), 0), Err(MetricsError::Parameter(_))));
        // Ensemble metrics accept different sample counts; paired metrics do not.
        assert!(mmse(a.view(), c.view()).is_ok());
        assert!(matches!(nrmse(a.view(), c.view()), Err(MetricsError::Shape(_))));
        assert!(matches!(crmse(a.view(), b.view()), Err(MetricsError::Shape(_))));
        assert!(matches!(brmse(a.view(), c.view()), Err(MetricsError::Shape(_))));
        assert!(matches!(frmse(a.view(), c.view(), &PDEBENCH_BANDS), Err(MetricsError::Shape(_))));
        assert!(matches!(mmse(empty.view(), a.view()), Err(MetricsError::Empty(_))));
        let g = Grid2d::square(16, 1.0).unwrap();
        assert!(spectrum_mse(&g, a.view(), a.view(), false).is_err());
        let odd = set(2, 1, 9, 9, 0);
        assert!(matches!(frmse(odd.view(), odd.view(), &PDEBENCH_BANDS), Err(MetricsError::Pde(_))));
        let c = DivergenceFree::new(g);
        assert!(matches!(constraint_errors(&c, a.view()), Err(MetricsError::Pde(_))));
    }

    #[test]
    fn spectrum_relative_error_counts_only_the_resolved_band() {
        let g = Grid2d::square(16, 1.0).unwrap();
        // 16 points: shells 1..=7 have their whole annulus below the Nyquist wavenumber 8.
        assert_eq!(resolved_shells(&g), 1..=7);
        assert!(resolved_shells(&Grid2d::square(2, 1.0).unwrap()).is_empty());
        // Doubling the fields quadruples the spectrum: relative error 3 exactly.
        let a = set(3, 2, 16, 16, 1);
        let b = a.mapv(|v| 2.0 * v);
        close(spectrum_relative_error(&g, b.view(), a.view()).unwrap(), 3.0, 1e-12);
        assert_eq!(spectrum_relative_error(&g, a.view(), a.view()).unwrap(), 0.0);
        // A constant offset only changes shell 0, which is left out; a mode above the band too.
        let nyquist = Grid2d::square(16, 1.0).unwrap().field_from_fn(|x, _| (TAU * 8.0 * x).cos());
        let shifted = Array4::from_shape_fn(a.raw_dim(), |(n, c, i, j)| a[[n, c, i, j]] + 5.0 + nyquist[[i, j]]);
        let base = spectrum_relative_error(&g, a.view(), a.view()).unwrap();
        let with_offset = spectrum_relative_error(&g, shifted.view(), a.view()).unwrap();
        assert!((with_offset - base).abs() < 1e-12, "{with_offset}");
    }
}
