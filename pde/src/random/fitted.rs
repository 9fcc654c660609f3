//! Mode variances fitted to data: the covariance of a stationary Gaussian measure with a data
//! set's second moment per Fourier mode, for a source measure that already has the data's
//! spectrum (see [`FittedSpectrum`]).

use ndarray::{Array2, ArrayView4, Axis};

use crate::error::{PdeError, Result};
use crate::grid::{Grid2d, signed_index};

/// The mode variances `v(k) = E|b_k|²` of a stationary Gaussian field fitted to data on one grid
/// (the *fitting grid*), with a rule for the modes that grid does not hold.
///
/// # Fit
///
/// [`FittedSpectrum::fit_fields`] takes the second moment of every Fourier coefficient over the
/// samples and channels of a batch: `v(k) = mean |f̂(k)|² / (nx ny)²` (not centred: a mean
/// pattern, such as the forced mode of a Kolmogorov flow, counts as variance, so the Gaussian has
/// the data's mean spectrum). [`FittedSpectrum::fit_streamfunction`] fits the streamfunction of a
/// velocity `(u, v)`: `ψ̂ = ω̂ / |k|²` from the vorticity `ω̂ = i kx v̂ − i ky û`, so that a
/// divergence-free Gaussian velocity `∇⊥ψ` has the data's energy per mode
/// (`|k|² v_ψ(k) = mean (|û|² + |v̂|²)/(nx ny)²` for divergence-free data).
///
/// # Other grids (the rule)
///
/// A grid of the same domain asks for integer modes `(mx, my)`. A mode strictly inside the fitting
/// grid's band, `|mx| < nx_f/2` and `|my| < ny_f/2`, gets its fitted value (so a coarser grid is
/// a spectral truncation, and a finer grid agrees with the fit on every mode the data resolved).
/// Every other mode — those a finer grid adds, and the fitting grid's own Nyquist row and column,
/// where the DFT folds `±n/2` together — gets the power-law tail `v(k) = A |k|^(−p)` (physical
/// `|k|`), least-squares fitted in log–log to the fitted modes with `k_c/2 ≤ |k| ≤ k_c`, `k_c` the
/// largest `|k|` on both axes inside the band (`2π (n/2 − 1)/L`). Modes with zero variance are left
/// out of the tail fit; without two positive ones the tail is zero. The mean mode keeps its
/// fitted value on every grid.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(deny_unknown_fields))]
pub struct FittedSpectrum {
    /// Points of the fitting grid along x.
    pub nx: usize,
    /// Points of the fitting grid along y.
    pub ny: usize,
    /// Domain length in x.
    pub lx: f64,
    /// Domain length in y.
    pub ly: f64,
    /// `v(k)` of every stored half-plane mode of the fitting grid, row-major `(ny, nx/2 + 1)`.
    pub variances: Vec<f64>,
    /// The tail's amplitude `A`.
    pub tail_amplitude: f64,
    /// The tail's exponent `p` (`v ∝ |k|^(−p)`).
    pub tail_exponent: f64,
    /// Samples the fit averaged (fields × channels).
    pub samples: usize,
}

impl FittedSpectrum {
    /// Builds the spectrum from exact mode variances `v` of `grid` (spectral layout, as
    /// [`crate::random::Covariance::mode_variances`]), fitting the tail.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `variances` if `v` has the wrong shape or a negative or
    /// non-finite entry.
    pub fn from_variances(grid: &Grid2d, v: &Array2<f64>, samples: usize) -> Result<Self> {
        let bad = |reason| PdeError::Parameter { name: "variances", value: f64::NAN, reason };
        if v.dim() != (grid.ny(), grid.nkx()) {
            return Err(bad("shape differs from the grid's spectral layout (ny, nx/2 + 1)"));
        }
        if v.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(bad("must be finite and non-negative"));
        }
        let (amp, exp) = tail_fit(grid, v);
        Ok(Self {
            nx: grid.nx(),
            ny: grid.ny(),
            lx: grid.lx(),
            ly: grid.ly(),
            variances: v.iter().copied().collect(),
            tail_amplitude: amp,
            tail_exponent: exp,
            samples,
        })
    }

    /// Fits `v(k)` to the fields of `batch` (`[n, c, ny, nx]` on `grid`), pooling samples and
    /// channels.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `batch` if it is empty or not on `grid`.
    pub fn fit_fields(grid: &Grid2d, batch: ArrayView4<f64>) -> Result<Self> {
        check_batch(grid, batch, None)?;
        let mut sum = Array2::<f64>::zeros((grid.ny(), grid.nkx()));
        let mut f = grid.pooled_spectrum();
        for sample in batch.axis_iter(Axis(0)) {
            for field in sample.axis_iter(Axis(0)) {
                grid.forward(field, f.view_mut())?;
                sum.zip_mut_with(&f, |s, c| *s += c.norm_sqr());
            }
        }
        crate::grid::recycle_spectrum(f);
        let count = batch.shape()[0] * batch.shape()[1];
        let n2 = ((grid.nx() * grid.ny()) as f64).powi(2);
        Self::from_variances(grid, &sum.mapv(|s| s / (n2 * count as f64)), count)
    }

    /// Fits the streamfunction variances `v_ψ(k)` of the velocities `batch` (`[n, 2, ny, nx]`,
    /// channels `(u, v)`): the divergent part and the mean flow are ignored, and the Nyquist row
    /// and column (where odd derivatives vanish) are zero.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `batch` if it is empty, not on `grid` or has other than two
    /// channels.
    pub fn fit_streamfunction(grid: &Grid2d, batch: ArrayView4<f64>) -> Result<Self> {
        check_batch(grid, batch, Some(2))?;
        let (kx, ky) = (grid.kx_deriv(), grid.ky_deriv());
        let (kx2, ky2) = (grid.kx(), grid.ky());
        let mut sum = Array2::<f64>::zeros((grid.ny(), grid.nkx()));
        let (mut u, mut v) = (grid.pooled_spectrum(), grid.pooled_spectrum());
        for sample in batch.axis_iter(Axis(0)) {
            grid.forward(sample.index_axis(Axis(0), 0), u.view_mut())?;
            grid.forward(sample.index_axis(Axis(0), 1), v.view_mut())?;
            for ((r, j), s) in sum.indexed_iter_mut() {
                let k2 = kx2[j] * kx2[j] + ky2[r] * ky2[r];
                if k2 == 0.0 || j == grid.nx() / 2 || r == grid.ny() / 2 {
                    continue;
                }
                // ω̂ = i (kx v̂ − ky û); |ψ̂|² = |ω̂|² / |k|⁴.
                let w = v[[r, j]] * kx[j] - u[[r, j]] * ky[r];
                *s += w.norm_sqr() / (k2 * k2);
            }
        }
        crate::grid::recycle_spectrum(u);
        crate::grid::recycle_spectrum(v);
        let count = batch.shape()[0];
        let n2 = ((grid.nx() * grid.ny()) as f64).powi(2);
        Self::from_variances(grid, &sum.mapv(|s| s / (n2 * count as f64)), count)
    }

    /// The fitting grid.
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] if the stored grid is invalid (a corrupted record).
    pub fn grid(&self) -> Result<Grid2d> {
        Grid2d::new(self.nx, self.ny, self.lx, self.ly)
    }

    /// Checks a stored record: a valid grid, one finite non-negative variance per stored mode and
    /// a finite tail.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming the inconsistent field.
    pub fn validate(&self) -> Result<()> {
        let grid = self.grid()?;
        let bad = |name, value, reason| Err(PdeError::Parameter { name, value, reason });
        if self.variances.len() != grid.ny() * grid.nkx() {
            return bad("variances", self.variances.len() as f64, "must hold ny (nx/2 + 1) values");
        }
        if self.variances.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return bad("variances", f64::NAN, "must be finite and non-negative");
        }
        if !self.tail_amplitude.is_finite() || self.tail_amplitude < 0.0 {
            return bad("tail_amplitude", self.tail_amplitude, "must be finite and non-negative");
        }
        if !self.tail_exponent.is_finite() {
            return bad("tail_exponent", self.tail_exponent, "must be finite");
        }
        Ok(())
    }

    /// `v(k)` of every stored mode of `grid` (spectral layout), by the rule of the
    /// [type documentation](Self).
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `grid` if its domain differs from the fitting grid's, or as
    /// [`FittedSpectrum::validate`].
    pub fn mode_variances(&self, grid: &Grid2d) -> Result<Array2<f64>> {
        self.validate()?;
        let same = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
        if !same(grid.lx(), self.lx) || !same(grid.ly(), self.ly) {
            return Err(PdeError::Parameter {
                name: "grid",
                value: grid.lx(),
                reason: "the domain differs from the one the spectrum was fitted on",
            });
        }
        let nkx_f = self.nx / 2 + 1;
        let (kx, ky) = (grid.kx(), grid.ky());
        let mut out = Array2::zeros((grid.ny(), grid.nkx()));
        for ((r, j), o) in out.indexed_iter_mut() {
            let (mx, my) = (signed_index(j, grid.nx()).unsigned_abs(), signed_index(r, grid.ny()));
            // The target's Nyquist column holds ±nx/2: never inside a band of the same size.
            let nyquist_x = j == grid.nx() / 2;
            if !nyquist_x && 2 * mx < self.nx && 2 * my.unsigned_abs() < self.ny {
                let row = my.rem_euclid(self.ny as isize) as usize;
                *o = self.variances[row * nkx_f + mx];
            } else {
                let k = (kx[j] * kx[j] + ky[r] * ky[r]).sqrt();
                *o = if k > 0.0 { self.tail_amplitude * k.powf(-self.tail_exponent) } else { 0.0 };
            }
        }
        Ok(out)
    }
}

fn check_batch(grid: &Grid2d, batch: ArrayView4<f64>, channels: Option<usize>) -> Result<()> {
    let bad = |reason| Err(PdeError::Parameter { name: "batch", value: batch.len() as f64, reason });
    let s = batch.shape();
    if s[0] == 0 || s[1] == 0 {
        return bad("holds no fields");
    }
    if (s[2], s[3]) != grid.shape() {
        return bad("is not on the grid");
    }
    if channels.is_some_and(|c| c != s[1]) {
        return bad("must have two channels (u, v)");
    }
    Ok(())
}

/// `(A, p)` of `v = A |k|^(−p)` fitted in log–log to the modes with `k_c/2 ≤ |k| ≤ k_c`.
fn tail_fit(grid: &Grid2d, v: &Array2<f64>) -> (f64, f64) {
    let (kx, ky) = (grid.kx(), grid.ky());
    let kc_x = 2.0 * std::f64::consts::PI * (grid.nx() / 2 - 1) as f64 / grid.lx();
    let kc_y = 2.0 * std::f64::consts::PI * (grid.ny() / 2 - 1) as f64 / grid.ly();
    let kc = kc_x.min(kc_y);
    let points: Vec<(f64, f64)> = v
        .indexed_iter()
        .filter_map(|((r, j), &var)| {
            let k = (kx[j] * kx[j] + ky[r] * ky[r]).sqrt();
            let inside = j != grid.nx() / 2 && r != grid.ny() / 2;
            (inside && var > 0.0 && k >= 0.5 * kc && k <= kc * (1.0 + 1e-12)).then(|| (k.ln(), var.ln()))
        })
        .collect();
    if points.len() < 2 {
        return (0.0, 0.0);
    }
    let n = points.len() as f64;
    let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + (x - mx) * (y - my), b + (x - mx).powi(2)));
    if sxx == 0.0 {
        return (my.exp(), 0.0);
    }
    let slope = sxy / sxx;
    ((my - slope * mx).exp(), -slope)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::random::{Covariance, GrfParams, GrfSampler, VelocityScale};

    /// A pure power law `σ² |k|^(−2α)` (τ = 0): the tail fit is exact.
    fn power_law(alpha: f64) -> Covariance {
        Covariance::Fno(GrfParams { alpha, tau: 0.0, sigma: Some(3.0), mean_zero: true })
    }

    #[test]
    fn a_power_law_fitted_on_64_squared_gives_the_exact_variances_on_128_squared() {
        let (coarse, fine) = (Grid2d::square(64, 2.0).unwrap(), Grid2d::square(128, 2.0).unwrap());
        let cov = power_law(2.5);
        let fit = FittedSpectrum::from_variances(&coarse, &cov.mode_variances(&coarse).unwrap(), 1).unwrap();
        assert!((fit.tail_exponent - 5.0).abs() < 1e-10, "exponent {}", fit.tail_exponent);
        let (got, want) = (fit.mode_variances(&fine).unwrap(), cov.mode_variances(&fine).unwrap());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-10 * w.abs(), "{g} vs {w}");
        }
        // Coarser grids are spectral truncations: the fitted values themselves.
        let coarser = Grid2d::square(32, 2.0).unwrap();
        let (got, want) = (fit.mode_variances(&coarser).unwrap(), cov.mode_variances(&coarser).unwrap());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-10 * w.abs(), "{g} vs {w}");
        }
    }

    #[test]
    fn table_modes_keep_their_values_and_new_modes_follow_the_tail() {
        // An anisotropic table (only some modes excited) is kept exactly inside the band.
        let coarse = Grid2d::new(16, 8, 1.0, 0.5).unwrap();
        let mut v = power_law(2.0).mode_variances(&coarse).unwrap();
        v[[1, 2]] *= 7.0; // (mx, my) = (2, 1)
        let fit = FittedSpectrum::from_variances(&coarse, &v, 1).unwrap();
        let fine = Grid2d::new(32, 16, 1.0, 0.5).unwrap();
        let out = fit.mode_variances(&fine).unwrap();
        assert_eq!(out[[1, 2]], v[[1, 2]]);
        assert_eq!(out[[16 - 1, 2]], v[[8 - 1, 2]]); // my = −1
        // (mx, my) = (9, 0) is beyond the coarse band: the tail.
        let k = 2.0 * std::f64::consts::PI * 9.0;
        let want = fit.tail_amplitude * k.powf(-fit.tail_exponent);
        assert!((out[[0, 9]] - want).abs() <= 1e-14 * want);
        // A domain mismatch is refused.
        assert!(fit.mode_variances(&Grid2d::new(32, 16, 1.0, 1.0).unwrap()).is_err());
    }

    #[test]
    fn fitting_samples_recovers_the_variances_within_the_sampling_error() {
        let grid = Grid2d::square(32, 1.0).unwrap();
        let cov = Covariance::Fno(GrfParams { alpha: 2.0, tau: 5.0, sigma: Some(10.0), mean_zero: true });
        let sampler = GrfSampler::new(&grid, &cov).unwrap();
        let n = 400;
        let batch = sampler.sample_batch(3, 0..n).unwrap();
        let fit = FittedSpectrum::fit_fields(&grid, batch.view()).unwrap();
        let want = sampler.mode_variances();
        // Shell means over many modes: each complex mode's estimate has relative std 1/√n; a shell
        // of m modes averages them, so 5/√(n m) bounds it with a wide margin.
        let got = Array2::from_shape_vec(want.raw_dim(), fit.variances.clone()).unwrap();
        for shell in 2..14 {
            let (mut g, mut w, mut m) = (0.0, 0.0, 0);
            for ((r, j), &x) in want.indexed_iter() {
                let (mx, my) = (j as f64, signed_index(r, 32) as f64);
                if (mx.hypot(my).round() as usize) == shell && j > 0 && j < 16 && r != 16 {
                    g += got[[r, j]] / x;
                    w += 1.0;
                    m += 1;
                }
            }
            let ratio = g / w;
            assert!((ratio - 1.0).abs() < 5.0 / ((n as f64) * m as f64).sqrt(), "shell {shell}: {ratio}");
        }
    }

    #[test]
    fn the_streamfunction_fit_of_divergence_free_velocities_is_their_streamfunction_covariance() {
        let grid = Grid2d::square(32, 1.0).unwrap();
        let cov = Covariance::Fno(GrfParams { alpha: 2.5, tau: 6.0, sigma: Some(20.0), mean_zero: true });
        let sampler = GrfSampler::new(&grid, &cov).unwrap();
        let uv = sampler.sample_velocity_batch(VelocityScale::Unscaled, 5, 0..1).unwrap();
        let fit = FittedSpectrum::fit_streamfunction(&grid, uv.view()).unwrap();
        // One sample: the fit is |ψ̂|²/N² of that sample exactly; compare with the streamfunction
        // spectrum of the same draw.
        let psi = sampler.sample_spectrum(5, 0).unwrap();
        let n2 = (32.0f64 * 32.0).powi(2);
        for ((r, j), c) in psi.indexed_iter() {
            let got = fit.variances[r * 17 + j];
            if r == 16 || j == 16 || (r, j) == (0, 0) {
                assert_eq!(got, 0.0);
            } else {
                let want = c.norm_sqr() / n2;
                assert!((got - want).abs() <= 1e-9 * want.max(1e-300), "({r}, {j}): {got} vs {want}");
            }
        }
    }
}
