//! Turbulence statistics of a generated set of velocity fields against a reference set, as the
//! literature on generative models of turbulence reports them (per-shell spectra, PDFs,
//! structure functions), on `[N, 2, ny, nx]` velocity batches of one periodic grid.
//!
//! - **Spectrum ratio** per integer shell `E_gen(k) / E_ref(k)` of the mean kinetic-energy
//!   spectra, over the resolved shells ([`super::resolved_shells`]) that hold at least
//!   `min_energy` of the reference's total energy, and the worst `|log10 ratio|` among them.
//! - **Vorticity PDF**: the L1 distance `∫ |p_gen − p_ref| dω` of the histogram densities on
//!   `bins` equal bins spanning the reference's range, plus the generated mass outside that range
//!   (so it lies in `[0, 2]`), the density MSE ([`super::density_mse`]), and the flatness
//!   `⟨ω⁴⟩/⟨ω²⟩²` of each set.
//! - **Increments**: `S₂`, `S₄` and the flatness `S₄/S₂²` of the longitudinal and transverse
//!   velocity increments at r = 1, 2, 4, 8 grid spacings ([`structure_functions`]).
//! - **Per-sample scalars** energy, enstrophy, palinstrophy
//!   ([`fieldflow_pde::turbulence::flow_scalars`]): mean and std of
//!   each set and the Wasserstein-1 distance of their distributions ([`wasserstein1`]).
//! - **Energy budget** of a forced flow ([`FlowParameters::budget`]): the set means of
//!   injection, dissipation and drag.

use fieldflow_pde::Grid2d;
use fieldflow_pde::spectrum::power_spectrum;
use fieldflow_pde::turbulence::{
    EnergyBudget, FlowParameters, FlowScalars, StructureFunctions, flatness, flow_scalars_and_vorticity,
    structure_functions,
};
use ndarray::{Array4, ArrayView4, Axis, s};
use rayon::prelude::*;

use super::{MetricsError, Result, check_same_field_shape, density_mse, resolved_shells};

/// The separations (in grid spacings) of the increment statistics.
pub const SEPARATIONS: [usize; 4] = [1, 2, 4, 8];

/// The Wasserstein-1 distance `∫ |F_a(x) − F_b(x)| dx` between the empirical distributions of
/// two samples (of any sizes).
///
/// # Errors
/// [`MetricsError::Empty`] when either is empty; [`MetricsError::Parameter`] for non-finite
/// values.
pub fn wasserstein1(a: &[f64], b: &[f64]) -> Result<f64> {
    if a.is_empty() || b.is_empty() {
        return Err(MetricsError::Empty("sample"));
    }
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return Err(MetricsError::Parameter("Wasserstein distance of non-finite values".into()));
    }
    let sorted = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    // Sweep the merged values; between consecutive ones both CDFs are constant.
    let (mut i, mut j, mut total) = (0usize, 0usize, 0.0);
    let mut x = a[0].min(b[0]);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        total += (i as f64 / na - j as f64 / nb).abs() * (next - x);
        x = next;
        while a.get(i) == Some(&next) {
            i += 1;
        }
        while b.get(j) == Some(&next) {
            j += 1;
        }
    }
    Ok(total)
}

/// The L1 distance between histogram densities of `generated` and `reference` on `bins` equal
/// bins spanning the reference's range, plus the fraction of generated values outside it.
///
/// # Errors
/// [`MetricsError::Empty`] for empty sets; [`MetricsError::Parameter`] for `bins == 0` or
/// non-finite values.
pub fn density_l1(generated: &[f64], reference: &[f64], bins: usize) -> Result<f64> {
    if generated.is_empty() || reference.is_empty() {
        return Err(MetricsError::Empty("sample"));
    }
    if bins == 0 {
        return Err(MetricsError::Parameter("histogram needs at least one bin".into()));
    }
    let (lo, hi) = reference.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if !(lo.is_finite() && hi.is_finite()) || generated.iter().any(|v| !v.is_finite()) {
        return Err(MetricsError::Parameter("values must be finite".into()));
    }
    let (lo, width) = if hi > lo { (lo, (hi - lo) / bins as f64) } else { (lo - 0.5, 1.0 / bins as f64) };
    let histogram = |values: &[f64]| {
        let mut h = vec![0.0; bins];
        let mut outside = 0.0;
        for &v in values {
            let b = (v - lo) / width;
            if b < 0.0 || b > bins as f64 {
                outside += 1.0;
            } else {
                h[(b as usize).min(bins - 1)] += 1.0;
            }
        }
        let n = values.len() as f64;
        (h.into_iter().map(|c| c / n).collect::<Vec<_>>(), outside / n)
    };
    let (g, outside) = histogram(generated);
    let (r, _) = histogram(reference);
    // Σ |p_g − p_r| Δ with p = count / (n Δ): the bin probabilities' L1 distance.
    Ok(g.iter().zip(&r).map(|(a, b)| (a - b).abs()).sum::<f64>() + outside)
}

/// What one set's turbulence statistics are made of.
#[derive(Debug, Clone)]
pub struct FlowStatistics {
    /// Mean kinetic-energy spectrum per shell (index = shell number).
    pub spectrum: Vec<f64>,
    /// Standard error of each shell's mean, `std / √N` over the samples (0 for one sample).
    pub spectrum_error: Vec<f64>,
    /// All vorticity values, `[N, 1, ny, nx]`.
    pub vorticity: Array4<f64>,
    /// `⟨ω⁴⟩/⟨ω²⟩²` over all samples and points.
    pub vorticity_flatness: f64,
    /// Increment moments at [`SEPARATIONS`].
    pub increments: StructureFunctions,
    /// Per-sample energy, enstrophy, palinstrophy.
    pub scalars: Vec<FlowScalars>,
    /// The set mean of the energy-budget terms, when the flow's parameters are known.
    pub budget: Option<EnergyBudget>,
}

impl FlowStatistics {
    /// The statistics of a velocity batch `[N, 2, ny, nx]` on `grid`.
    ///
    /// # Errors
    /// [`MetricsError::Empty`] for no samples; [`MetricsError::Pde`] for shapes that do not fit
    /// `grid` or grids smaller than 9 points a side (the largest separation is 8).
    pub fn of(grid: &Grid2d, uv: ArrayView4<f64>, flow: Option<&FlowParameters>) -> Result<Self> {
        let n = uv.shape()[0];
        if n == 0 {
            return Err(MetricsError::Empty("velocity set"));
        }
        let force = flow.map(|f| f.body_force(grid)).transpose()?;
        // One pass over the samples: vorticity, scalars, spectrum and budget of each field.
        let per_sample: Vec<_> = uv
            .axis_iter(Axis(0))
            .into_par_iter()
            .map(|f| {
                let (scalars, w) = flow_scalars_and_vorticity(grid, f)?;
                let budget = match (flow, &force) {
                    (Some(flow), Some(force)) => Some(flow.budget_with(grid, force.view(), f, &scalars)?),
                    _ => None,
                };
                Ok((w, scalars, power_spectrum(grid, f)?.energy, budget))
            })
            .collect::<std::result::Result<_, fieldflow_pde::PdeError>>()?;
        let shells = per_sample[0].2.len();
        let shell_values = |k: usize| per_sample.iter().map(move |p| p.2[k]);
        let spectrum: Vec<f64> = (0..shells).map(|k| shell_values(k).sum::<f64>() / n as f64).collect();
        let spectrum_error = spectrum
            .iter()
            .enumerate()
            .map(|(k, &mean)| {
                if n < 2 {
                    return 0.0;
                }
                let var = shell_values(k).map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
                (var / n as f64).sqrt()
            })
            .collect();
        let mut w = Array4::zeros((n, 1, grid.ny(), grid.nx()));
        for (i, (wi, ..)) in per_sample.iter().enumerate() {
            w.slice_mut(s![i, 0, .., ..]).assign(wi);
        }
        let scalars = per_sample.iter().map(|p| p.1).collect();
        let terms: Option<Vec<EnergyBudget>> = per_sample.iter().map(|p| p.3).collect();
        let budget = terms.map(|terms| {
            let mean = |f: fn(&EnergyBudget) -> f64| terms.iter().map(f).sum::<f64>() / n as f64;
            EnergyBudget {
                injection: mean(|b| b.injection),
                dissipation: mean(|b| b.dissipation),
                drag: mean(|b| b.drag),
            }
        });
        Ok(Self {
            spectrum,
            spectrum_error,
            vorticity_flatness: flatness(w.iter()),
            vorticity: w,
            increments: structure_functions(uv, &SEPARATIONS)?,
            scalars,
            budget,
        })
    }
}

/// One checked shell of the spectrum ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShellRatio {
    /// Shell number.
    pub shell: usize,
    /// The reference's energy in the shell as a fraction of its total energy.
    pub share: f64,
    /// `E_gen / E_ref`.
    pub ratio: f64,
    /// The ratio's relative sampling error (one standard error) from the two sets' per-sample
    /// spectra: `√((σ_gen/E_gen)² + (σ_ref/E_ref)²)` with `σ` the standard errors of the means.
    pub error: f64,
}

/// A scalar of both sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    /// Generated.
    pub generated: f64,
    /// Reference.
    pub reference: f64,
}

impl Pair {
    /// `generated / reference − 1`.
    #[must_use]
    pub fn relative_error(&self) -> f64 {
        self.generated / self.reference - 1.0
    }
}

/// One per-sample scalar compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalarComparison {
    /// `"energy"`, `"enstrophy"` or `"palinstrophy"`.
    pub name: &'static str,
    /// Set means.
    pub mean: Pair,
    /// Set standard deviations (population).
    pub std: Pair,
    /// Wasserstein-1 distance of the two distributions.
    pub wasserstein1: f64,
}

/// The increment flatness of both sets at one separation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IncrementComparison {
    /// Separation in grid spacings.
    pub separation: usize,
    /// Longitudinal `S₂`.
    pub s2: Pair,
    /// Longitudinal flatness `S₄/S₂²`.
    pub flatness: Pair,
    /// Transverse flatness.
    pub transverse_flatness: Pair,
}

/// The comparison of two sets; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct FlowComparison {
    /// The checked shells.
    pub shells: Vec<ShellRatio>,
    /// The largest `|log10 ratio|` over the checked shells (0 when none is checked).
    pub worst_log10: f64,
    /// The vorticity-PDF L1 distance ([`density_l1`]).
    pub vorticity_pdf_l1: f64,
    /// The vorticity density MSE ([`super::density_mse`]).
    pub vorticity_density_mse: f64,
    /// Vorticity flatness.
    pub vorticity_flatness: Pair,
    /// Increments at [`SEPARATIONS`].
    pub increments: Vec<IncrementComparison>,
    /// Energy, enstrophy, palinstrophy.
    pub scalars: Vec<ScalarComparison>,
    /// Injection, dissipation, drag, when the flow's parameters are known.
    pub budget: Option<Vec<(&'static str, Pair)>>,
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// Compares the turbulence statistics of two velocity batches on `grid`; `min_energy` selects
/// the checked shells, `bins` the vorticity histogram.
///
/// # Errors
/// As [`FlowStatistics::of`]; [`MetricsError::Shape`] for sets of different field shapes,
/// [`MetricsError::Parameter`] for `bins == 0`, a negative or non-finite `min_energy`.
pub fn compare_flows(
    grid: &Grid2d,
    generated: ArrayView4<f64>,
    reference: ArrayView4<f64>,
    flow: Option<&FlowParameters>,
    min_energy: f64,
    bins: usize,
) -> Result<FlowComparison> {
    check_same_field_shape(&generated, &reference)?;
    if !(min_energy.is_finite() && min_energy >= 0.0) {
        return Err(MetricsError::Parameter(format!("min_energy = {min_energy} must be finite and non-negative")));
    }
    let g = FlowStatistics::of(grid, generated, flow)?;
    let r = FlowStatistics::of(grid, reference, flow)?;
    compare_statistics(grid, &g, &r, min_energy, bins)
}

/// [`compare_flows`] on statistics already computed.
///
/// # Errors
/// As [`compare_flows`].
pub fn compare_statistics(
    grid: &Grid2d,
    g: &FlowStatistics,
    r: &FlowStatistics,
    min_energy: f64,
    bins: usize,
) -> Result<FlowComparison> {
    let total: f64 = r.spectrum.iter().sum();
    let shells: Vec<ShellRatio> = resolved_shells(grid)
        .filter(|&k| k < r.spectrum.len() && total > 0.0 && r.spectrum[k] >= min_energy * total && r.spectrum[k] > 0.0)
        .map(|k| {
            let rel = |st: &FlowStatistics| match (st.spectrum_error.get(k), st.spectrum[k]) {
                (Some(&e), m) if m > 0.0 => e / m,
                _ => 0.0,
            };
            ShellRatio {
                shell: k,
                share: r.spectrum[k] / total,
                ratio: g.spectrum[k] / r.spectrum[k],
                error: rel(g).hypot(rel(r)),
            }
        })
        .collect();
    let worst_log10 = shells.iter().map(|s| s.ratio.log10().abs()).fold(0.0, f64::max);
    let (gw, rw) = (g.vorticity.as_slice().unwrap_or_default(), r.vorticity.as_slice().unwrap_or_default());
    let pair = |generated, reference| Pair { generated, reference };
    let increments = g
        .increments
        .longitudinal
        .iter()
        .zip(&r.increments.longitudinal)
        .zip(g.increments.transverse.iter().zip(&r.increments.transverse))
        .map(|((gl, rl), (gt, rt))| IncrementComparison {
            separation: gl.separation,
            s2: pair(gl.s2, rl.s2),
            flatness: pair(gl.flatness(), rl.flatness()),
            transverse_flatness: pair(gt.flatness(), rt.flatness()),
        })
        .collect();
    let scalar = |name, f: fn(&FlowScalars) -> f64| -> Result<ScalarComparison> {
        let (a, b): (Vec<f64>, Vec<f64>) = (g.scalars.iter().map(f).collect(), r.scalars.iter().map(f).collect());
        let ((ma, sa), (mb, sb)) = (mean_std(&a), mean_std(&b));
        Ok(ScalarComparison { name, mean: pair(ma, mb), std: pair(sa, sb), wasserstein1: wasserstein1(&a, &b)? })
    };
    let scalars = vec![
        scalar("energy", |s| s.energy)?,
        scalar("enstrophy", |s| s.enstrophy)?,
        scalar("palinstrophy", |s| s.palinstrophy)?,
    ];
    let budget = g.budget.zip(r.budget).map(|(a, b)| {
        vec![
            ("injection", pair(a.injection, b.injection)),
            ("dissipation", pair(a.dissipation, b.dissipation)),
            ("drag", pair(a.drag, b.drag)),
        ]
    });
    Ok(FlowComparison {
        shells,
        worst_log10,
        vorticity_pdf_l1: density_l1(gw, rw, bins)?,
        vorticity_density_mse: density_mse(g.vorticity.view(), r.vorticity.view(), bins)?,
        vorticity_flatness: pair(g.vorticity_flatness, r.vorticity_flatness),
        increments,
        scalars,
        budget,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use fieldflow_pde::random::{Covariance, GrfParams, GrfSampler, VelocityScale};

    fn grf_velocity(grid: &Grid2d, seed: u64, n: u64) -> Array4<f64> {
        let cov = Covariance::Fno(GrfParams { alpha: 2.0, tau: 3.0, sigma: None, mean_zero: true });
        GrfSampler::new(grid, &cov).unwrap().sample_velocity_batch(VelocityScale::ExpectedRms(1.0), seed, 0..n).unwrap()
    }

    #[test]
    fn wasserstein_of_shifted_and_point_masses() {
        assert!((wasserstein1(&[0.0], &[1.0]).unwrap() - 1.0).abs() < 1e-15);
        let a: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.37).collect();
        let shifted: Vec<f64> = a.iter().map(|v| v + 2.5).collect();
        assert!((wasserstein1(&a, &shifted).unwrap() - 2.5).abs() < 1e-12);
        assert!(wasserstein1(&a, &a).unwrap().abs() < 1e-15);
        // {0, 1} against {0.5}: |F_a − F_b| = ½ on [0, 1].
        assert!((wasserstein1(&[0.0, 1.0], &[0.5]).unwrap() - 0.5).abs() < 1e-15);
        assert!(wasserstein1(&[], &[1.0]).is_err());
        assert!(wasserstein1(&[f64::NAN], &[1.0]).is_err());
    }

    #[test]
    fn density_l1_of_disjoint_and_equal_sets() {
        let a: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        assert!(density_l1(&a, &a, 20).unwrap().abs() < 1e-15);
        let far: Vec<f64> = a.iter().map(|v| v + 10.0).collect();
        assert!((density_l1(&far, &a, 20).unwrap() - 2.0).abs() < 1e-12);
        // Half the mass moved out of the range: L1 = ½ (missing inside) + ½ (outside).
        let half: Vec<f64> = a.iter().enumerate().map(|(i, v)| if i % 2 == 0 { *v } else { v + 10.0 }).collect();
        assert!((density_l1(&half, &a, 10).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_scaled_band_shows_in_exactly_its_shells() {
        // Scaling the velocity's modes in shells 5..=6 by 1.5 multiplies their energy by 2.25
        // and leaves every other shell's unchanged.
        let grid = Grid2d::square(32, 2.0 * std::f64::consts::PI).unwrap();
        let r = grf_velocity(&grid, 3, 16);
        let mut g = r.clone();
        for mut uv in g.axis_iter_mut(Axis(0)) {
            for mut f in uv.axis_iter_mut(Axis(0)) {
                let mut spec = grid.fft(f.view()).unwrap();
                for ((i, j), v) in spec.indexed_iter_mut() {
                    let shell = grid.kx()[j].hypot(grid.ky()[i]).round() as usize;
                    if (5..=6).contains(&shell) {
                        *v *= 1.5;
                    }
                }
                f.assign(&grid.ifft(spec.view()).unwrap());
            }
        }
        let c = compare_flows(&grid, g.view(), r.view(), None, 0.0, 32).unwrap();
        assert_eq!(c.shells.first().unwrap().shell, 1);
        assert_eq!(c.shells.last().unwrap().shell, *resolved_shells(&grid).end());
        for s in &c.shells {
            let expected = if (5..=6).contains(&s.shell) { 2.25 } else { 1.0 };
            assert!((s.ratio - expected).abs() < 1e-9, "{s:?}");
        }
        assert!((c.worst_log10 - 2.25_f64.log10()).abs() < 1e-9);
        // min_energy drops the weak shells: with the median share as threshold, about half remain.
        let mut shares: Vec<f64> = c.shells.iter().map(|s| s.share).collect();
        shares.sort_by(f64::total_cmp);
        let median = shares[shares.len() / 2];
        let strong = compare_flows(&grid, g.view(), r.view(), None, median, 32).unwrap();
        assert!(strong.shells.len() < c.shells.len(), "{} of {}", strong.shells.len(), c.shells.len());
        assert!(strong.shells.iter().all(|s| s.share >= median));
        assert_eq!(strong.shells.len(), c.shells.iter().filter(|s| s.share >= median).count());
    }

    #[test]
    fn two_draws_of_one_gaussian_measure_agree() {
        // Independent sets of the same Gaussian: every statistic within its sampling error.
        let grid = Grid2d::square(32, 2.0 * std::f64::consts::PI).unwrap();
        let (g, r) = (grf_velocity(&grid, 1, 128), grf_velocity(&grid, 2, 128));
        let c = compare_flows(&grid, g.view(), r.view(), None, 1e-6, 32).unwrap();
        assert!(c.worst_log10 < 0.1, "{:?}", c.shells);
        // The stated one-σ errors describe the scatter of the ratios about 1: the z-scores have
        // a root mean square near 1 over the shells (a χ² check on ~20 shells).
        assert!(c.shells.iter().all(|s| s.error > 0.0 && s.error < 0.2), "{:?}", c.shells);
        let z2 = c.shells.iter().map(|s| ((s.ratio - 1.0) / s.error).powi(2)).sum::<f64>() / c.shells.len() as f64;
        assert!((0.3..2.0).contains(&z2), "mean squared z-score {z2}");
        assert!(c.vorticity_pdf_l1 < 0.05, "{}", c.vorticity_pdf_l1);
        assert!((c.vorticity_flatness.generated - 3.0).abs() < 0.1);
        for inc in &c.increments {
            assert!(inc.flatness.relative_error().abs() < 0.05, "{inc:?}");
        }
        for s in &c.scalars {
            assert!(s.mean.relative_error().abs() < 0.05, "{s:?}");
            assert!(s.wasserstein1 < 0.1 * s.mean.reference, "{s:?}");
        }
        assert!(c.budget.is_none());
    }
}
