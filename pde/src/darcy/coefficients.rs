//! Seeded coefficient fields `a` and forcings `f` for Darcy datasets.
//!
//! Every random draw comes from [`crate::rng::stream`]`(seed, index)`, so sample `index` is the
//! same whether a dataset is generated serially, in parallel or in shards.
//!
//! - [`FnoCoefficient`]: the FNO benchmark (Li et al. 2021, `data_generation/darcy/GRF.m`): a
//!   Gaussian random field with covariance `(−Δ + τ²)^(−α)` under Neumann boundary conditions,
//!   drawn through its cosine expansion, thresholded to two values.
//! - [`PdebenchCoefficient`]: a PDEBench-style binary medium (values 1 and 0.1) from the sign of
//!   a sum of random Gaussian bumps.
//! - [`Forcing`]: constant or piecewise-constant right-hand sides.

use std::f64::consts::PI;

use ndarray::Array2;
use ndrustfft::{DctHandler, Normalization, nddct3};
use rand::RngExt;
use rand_distr::StandardNormal;

use super::check_grid;
use crate::error::{PdeError, Result};
use crate::rng::stream;

/// The FNO Darcy coefficient: `a = high` where a Gaussian random field `g ≥ 0`, `low` where `g < 0`.
///
/// `g` is MATLAB's `GRF(alpha, tau, s)` from the FNO data generator:
///
/// ```text
/// L[k₂, k₁] = s · τ^(α−1) (π²(k₁² + k₂²) + τ²)^(−α/2) · ξ[k₂, k₁],   ξ ~ N(0, 1) i.i.d.,
/// L[0, 0] = 0,   g = idct2(L)
/// ```
///
/// for `k₁, k₂ = 0 … s−1`, where `idct2` is the orthonormal 2-D inverse DCT-II (MATLAB's
/// `idct2`). The cosine modes are the Neumann eigenfunctions of `−Δ` on the cell-centred grid,
/// so `g` has covariance `(−Δ + τ²)^(−α)` (up to the constant `τ^(2α−2)`), zero mean, and an
/// expected squared cosine coefficient decaying as `(π²|k|² + τ²)^(−α)`. The FNO datasets use
/// `α = 2`, `τ = 3`, `a ∈ {12, 3}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FnoCoefficient {
    /// Smoothness exponent `α > 0` of the covariance `(−Δ + τ²)^(−α)`.
    pub alpha: f64,
    /// Inverse length scale `τ > 0`.
    pub tau: f64,
    /// Value of `a` where the field is `≥ 0`.
    pub high: f64,
    /// Value of `a` where the field is `< 0`.
    pub low: f64,
}

impl Default for FnoCoefficient {
    fn default() -> Self {
        Self { alpha: 2.0, tau: 3.0, high: 12.0, low: 3.0 }
    }
}

impl FnoCoefficient {
    /// The thresholded coefficient of sample `index` under `seed`, shape `(s, s)`.
    ///
    /// # Errors
    /// As [`gaussian_field`](Self::gaussian_field).
    pub fn sample(&self, s: usize, seed: u64, index: u64) -> Result<Array2<f64>> {
        let g = self.gaussian_field(s, seed, index)?;
        Ok(g.mapv(|v| if v >= 0.0 { self.high } else { self.low }))
    }

    /// The underlying Gaussian random field `g` of sample `index` under `seed`, shape `(s, s)`.
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] if `s < 3`; [`PdeError::Parameter`] if `alpha` or `tau` is not
    /// finite and positive, or `high` / `low` is not finite and positive.
    pub fn gaussian_field(&self, s: usize, seed: u64, index: u64) -> Result<Array2<f64>> {
        check_grid(s)?;
        positive("alpha", self.alpha)?;
        positive("tau", self.tau)?;
        positive("high", self.high)?;
        positive("low", self.low)?;

        // rustdct's unnormalised DCT-III is y_n = X_0/2 + Σ_{k≥1} X_k cos(πk(2n+1)/2s); MATLAB's
        // orthonormal idct weights X_0 by 1/√s and X_k by √(2/s): fold both into the coefficients.
        let n = s as f64;
        let weight = |k: usize| {
            if k == 0 { 2.0 / n.sqrt() } else { (2.0 / n).sqrt() }
        };
        let prefactor = n * self.tau.powf(self.alpha - 1.0);
        let mut rng = stream(seed, index);
        let mut coef = Array2::<f64>::zeros((s, s));
        for ((k2, k1), c) in coef.indexed_iter_mut() {
            let xi: f64 = rng.sample(StandardNormal);
            let k_sq = (k1 * k1 + k2 * k2) as f64;
            let sqrt_eig = (PI * PI * k_sq + self.tau * self.tau).powf(-0.5 * self.alpha);
            *c = prefactor * sqrt_eig * xi * weight(k1) * weight(k2);
        }
        coef[[0, 0]] = 0.0;

        let handler = DctHandler::<f64>::new(s).normalization(Normalization::None);
        let mut along_y = Array2::zeros((s, s));
        nddct3(&coef, &mut along_y, &handler, 0);
        let mut field = Array2::zeros((s, s));
        nddct3(&along_y, &mut field, &handler, 1);
        Ok(field)
    }
}

/// A PDEBench-style binary medium: `a = high` where a sum of random Gaussian bumps is `> 0`,
/// `low` elsewhere.
///
/// The field is `g(x) = Σ_b σ_b A_b exp(−|x − c_b|² / (2 w_b²))` over `n_bumps` bumps, drawn in
/// this order for each bump: centre `c_b` uniform on the unit square (x then y), width `w_b`
/// uniform on `[width_min, width_max)`, sign `σ_b = ±1` with probability ½ each, amplitude `A_b`
/// uniform on `[0.5, 1)`. Far from every bump, `g` takes the sign of the nearest tail (or
/// underflows to 0, giving `low`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PdebenchCoefficient {
    /// Number of bumps (at least 1).
    pub n_bumps: usize,
    /// Smallest bump width (standard deviation), in units of the domain side.
    pub width_min: f64,
    /// Largest bump width.
    pub width_max: f64,
    /// Value of `a` where the bump sum is positive.
    pub high: f64,
    /// Value of `a` elsewhere.
    pub low: f64,
}

impl Default for PdebenchCoefficient {
    fn default() -> Self {
        Self { n_bumps: 8, width_min: 0.05, width_max: 0.2, high: 1.0, low: 0.1 }
    }
}

impl PdebenchCoefficient {
    /// The thresholded coefficient of sample `index` under `seed`, shape `(s, s)`.
    ///
    /// # Errors
    /// As [`bump_field`](Self::bump_field).
    pub fn sample(&self, s: usize, seed: u64, index: u64) -> Result<Array2<f64>> {
        let g = self.bump_field(s, seed, index)?;
        Ok(g.mapv(|v| if v > 0.0 { self.high } else { self.low }))
    }

    /// The smooth bump sum `g` of sample `index` under `seed`, shape `(s, s)`.
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] if `s < 3`; [`PdeError::Parameter`] if `n_bumps = 0`, the widths
    /// are not finite with `0 < width_min ≤ width_max`, or `high` / `low` is not finite and
    /// positive.
    pub fn bump_field(&self, s: usize, seed: u64, index: u64) -> Result<Array2<f64>> {
        check_grid(s)?;
        if self.n_bumps == 0 {
            return Err(PdeError::Parameter { name: "n_bumps", value: 0.0, reason: "at least one bump is needed" });
        }
        positive("width_min", self.width_min)?;
        positive("width_max", self.width_max)?;
        if self.width_max < self.width_min {
            return Err(PdeError::Parameter {
                name: "width_max",
                value: self.width_max,
                reason: "must be at least width_min",
            });
        }
        positive("high", self.high)?;
        positive("low", self.low)?;

        let mut rng = stream(seed, index);
        let bumps: Vec<[f64; 4]> = (0..self.n_bumps)
            .map(|_| {
                let cx: f64 = rng.random();
                let cy: f64 = rng.random();
                let width = self.width_min + (self.width_max - self.width_min) * rng.random::<f64>();
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let amplitude = 0.5 + 0.5 * rng.random::<f64>();
                [cx, cy, -0.5 / (width * width), sign * amplitude]
            })
            .collect();
        let h = 1.0 / (s - 1) as f64;
        Ok(Array2::from_shape_fn((s, s), |(i, j)| {
            let (x, y) = (j as f64 * h, i as f64 * h);
            bumps
                .iter()
                .map(|[cx, cy, rate, amp]| {
                    let d2 = (x - cx).powi(2) + (y - cy).powi(2);
                    amp * (rate * d2).exp()
                })
                .sum()
        }))
    }
}

/// Right-hand side `f` of the Darcy problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Forcing {
    /// `f` equal to the value everywhere (the FNO datasets use 1).
    Constant(f64),
    /// `f = left` on nodes with `x < split`, `right` on nodes with `x ≥ split`.
    Piecewise {
        /// Value on `x < split`.
        left: f64,
        /// Value on `x ≥ split`.
        right: f64,
        /// Position of the jump along x, in `[0, 1]` (e.g. 0.5).
        split: f64,
    },
}

impl Default for Forcing {
    fn default() -> Self {
        Self::Constant(1.0)
    }
}

impl Forcing {
    /// The forcing on `s × s` nodes (boundary included; the solver ignores boundary values).
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] if `s < 3`; [`PdeError::Parameter`] for a non-finite value or a
    /// `split` outside `[0, 1]`.
    pub fn field(&self, s: usize) -> Result<Array2<f64>> {
        check_grid(s)?;
        match *self {
            Self::Constant(value) => {
                finite("forcing", value)?;
                Ok(Array2::from_elem((s, s), value))
            }
            Self::Piecewise { left, right, split } => {
                finite("forcing.left", left)?;
                finite("forcing.right", right)?;
                if !(0.0..=1.0).contains(&split) {
                    return Err(PdeError::Parameter {
                        name: "forcing.split",
                        value: split,
                        reason: "must lie in [0, 1]",
                    });
                }
                let h = 1.0 / (s - 1) as f64;
                Ok(Array2::from_shape_fn((s, s), |(_, j)| if (j as f64) * h < split { left } else { right }))
            }
        }
    }
}

fn finite(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() { Ok(()) } else { Err(PdeError::Parameter { name, value, reason: "must be finite" }) }
}

fn positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(PdeError::Parameter { name, value, reason: "must be finite and positive" })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use ndrustfft::nddct2;

    /// MATLAB's orthonormal `dct2` (DCT-II along both axes), the inverse of `idct2`.
    fn dct2_orthonormal(g: &Array2<f64>) -> Array2<f64> {
        let s = g.nrows();
        let handler = DctHandler::<f64>::new(s).normalization(Normalization::None);
        let mut along_y = Array2::zeros((s, s));
        nddct2(g, &mut along_y, &handler, 0);
        let mut out = Array2::zeros((s, s));
        nddct2(&along_y, &mut out, &handler, 1);
        let n = s as f64;
        let w = |k: usize| {
            if k == 0 { (1.0 / n).sqrt() } else { (2.0 / n).sqrt() }
        };
        for ((k2, k1), v) in out.indexed_iter_mut() {
            *v *= w(k1) * w(k2);
        }
        out
    }

    #[test]
    fn fno_field_is_the_matlab_inverse_cosine_transform() {
        // Direct evaluation of MATLAB's idct2 of L = s·coef·ξ on a small grid.
        let s = 7;
        let params = FnoCoefficient::default();
        let g = params.gaussian_field(s, 5, 2).unwrap();
        let mut rng = stream(5, 2);
        let n = s as f64;
        let mut l = Array2::<f64>::zeros((s, s));
        for ((k2, k1), v) in l.indexed_iter_mut() {
            let xi: f64 = rng.sample(StandardNormal);
            let k_sq = (k1 * k1 + k2 * k2) as f64;
            *v = n * 3.0 * (PI * PI * k_sq + 9.0).powf(-1.0) * xi;
        }
        l[[0, 0]] = 0.0;
        let w = |k: usize| {
            if k == 0 { (1.0 / n).sqrt() } else { (2.0 / n).sqrt() }
        };
        let basis = |k: usize, m: usize| w(k) * (PI * (2 * m + 1) as f64 * k as f64 / (2.0 * n)).cos();
        let mut max_diff = 0.0_f64;
        for ((i, j), gv) in g.indexed_iter() {
            let direct: f64 = l.indexed_iter().map(|((k2, k1), lv)| lv * basis(k2, i) * basis(k1, j)).sum();
            max_diff = max_diff.max((direct - gv).abs());
        }
        assert!(max_diff < 1e-13, "{max_diff}");
        // And the forward orthonormal DCT recovers L.
        let back = dct2_orthonormal(&g);
        assert!((&back - &l).mapv(f64::abs).fold(0.0_f64, |m, v| m.max(*v)) < 1e-13);
    }

    #[test]
    fn fno_coefficient_is_reproducible_and_two_valued() {
        let params = FnoCoefficient::default();
        let s = 64;
        let a = params.sample(s, 42, 7).unwrap();
        assert_eq!(a, params.sample(s, 42, 7).unwrap());
        assert_ne!(a, params.sample(s, 42, 8).unwrap());
        assert_ne!(a, params.sample(s, 43, 7).unwrap());
        assert!(a.iter().all(|v| *v == 12.0 || *v == 3.0));
        let high = a.iter().filter(|v| **v == 12.0).count();
        assert!(high > 0 && high < s * s, "both values occur: {high} of {}", s * s);
    }

    #[test]
    fn fno_field_has_zero_mean_and_the_requested_spectrum() {
        let s = 64;
        let samples = 8;
        for alpha in [2.0, 3.0] {
            let params = FnoCoefficient { alpha, ..FnoCoefficient::default() };
            let tau = params.tau;
            // Squared cosine coefficients c_k = L_k / s, averaged over the samples, mode by mode.
            let mut power = Array2::<f64>::zeros((s, s));
            for index in 0..samples {
                let g = params.gaussian_field(s, 1, index).unwrap();
                let peak = g.mapv(f64::abs).fold(0.0_f64, |m, v| m.max(*v));
                assert!(g.mean().unwrap().abs() <= 1e-13 * peak, "zero mean");
                let c = dct2_orthonormal(&g) / s as f64;
                assert!(c[[0, 0]].abs() <= 1e-13 * peak, "zero mean mode");
                power += &(&c * &c / samples as f64);
            }
            // E[c_k²] = τ^(2α−2) (π²|k|² + τ²)^(−α): log E[c_k²] is linear in
            // x_k = ln(π²|k|² + τ²) with slope −α. The log of an 8-sample mean of χ²₁ is biased
            // by the same constant for every mode, which moves the intercept, not the slope.
            let mut ratio = 0.0;
            let mut points = Vec::with_capacity(s * s - 1);
            for ((k2, k1), p) in power.indexed_iter() {
                if k1 + k2 == 0 {
                    continue;
                }
                let lambda = PI * PI * (k1 * k1 + k2 * k2) as f64 + tau * tau;
                ratio += p / (tau.powf(2.0 * alpha - 2.0) * lambda.powf(-alpha));
                points.push((lambda.ln(), p.ln()));
            }
            let np = points.len() as f64;
            let mean_ratio = ratio / np;
            assert!((mean_ratio - 1.0).abs() < 0.03, "alpha {alpha}: mean ratio {mean_ratio}");
            let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / np, b + y / np));
            let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
            let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
            let slope = sxy / sxx;
            assert!((slope + alpha).abs() < 0.05, "alpha {alpha}: slope {slope}");
        }
    }

    #[test]
    fn pdebench_coefficient_is_reproducible_and_two_valued() {
        let params = PdebenchCoefficient::default();
        let s = 48;
        let a = params.sample(s, 3, 0).unwrap();
        assert_eq!(a, params.sample(s, 3, 0).unwrap());
        assert_ne!(a, params.sample(s, 3, 1).unwrap());
        assert!(a.iter().all(|v| *v == 1.0 || *v == 0.1));
        let g = params.bump_field(s, 3, 0).unwrap();
        assert!(a.iter().zip(&g).all(|(a, g)| (*a == 1.0) == (*g > 0.0)));
        let high: usize = (0..4).map(|i| params.sample(s, 3, i).unwrap().iter().filter(|v| **v == 1.0).count()).sum();
        assert!(high > 0 && high < 4 * s * s, "both values occur: {high}");
        // Every bump has amplitude in [0.5, 1): the field is bounded by n_bumps.
        assert!(g.iter().all(|v| v.abs() < params.n_bumps as f64));
    }

    #[test]
    fn forcing_fields() {
        let s = 5;
        assert_eq!(Forcing::default().field(s).unwrap(), Array2::from_elem((s, s), 1.0));
        let f = Forcing::Piecewise { left: 2.0, right: -1.0, split: 0.5 }.field(s).unwrap();
        // x = 0, 0.25 | 0.5, 0.75, 1.
        assert_eq!(f.row(3).to_vec(), vec![2.0, 2.0, -1.0, -1.0, -1.0]);
        assert_eq!(f.column(1).to_vec(), vec![2.0; s]);
    }

    #[test]
    fn generators_reject_bad_parameters() {
        let fno = FnoCoefficient::default();
        assert!(matches!(fno.sample(2, 0, 0), Err(PdeError::InvalidGrid(_))));
        let bad = FnoCoefficient { tau: -1.0, ..fno };
        assert!(matches!(bad.sample(8, 0, 0), Err(PdeError::Parameter { name: "tau", .. })));
        let bad = FnoCoefficient { low: f64::NAN, ..fno };
        assert!(matches!(bad.sample(8, 0, 0), Err(PdeError::Parameter { name: "low", .. })));
        let pdebench = PdebenchCoefficient::default();
        let bad = PdebenchCoefficient { n_bumps: 0, ..pdebench };
        assert!(matches!(bad.sample(8, 0, 0), Err(PdeError::Parameter { name: "n_bumps", .. })));
        let bad = PdebenchCoefficient { width_max: 0.01, ..pdebench };
        assert!(matches!(bad.sample(8, 0, 0), Err(PdeError::Parameter { name: "width_max", .. })));
        let bad = Forcing::Piecewise { left: 1.0, right: 1.0, split: 1.5 };
        assert!(matches!(bad.field(8), Err(PdeError::Parameter { name: "forcing.split", .. })));
        let bad = Forcing::Constant(f64::INFINITY);
        assert!(matches!(bad.field(8), Err(PdeError::Parameter { name: "forcing", .. })));
    }
}
