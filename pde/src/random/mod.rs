//! Gaussian random fields on a periodic [`Grid2d`], and divergence-free random velocities.
//!
//! # Mathematics
//!
//! A real field on `D = [0, Lx) × [0, Ly)` is a Fourier series `f(x) = Σ_k b_k e^{i k·x}` with
//! `k = 2π (mx/Lx, my/Ly)` and `b_{−k} = conj(b_k)`. A centred Gaussian measure `N(0, C)` on
//! `L²(D)` whose covariance operator has the eigenfunctions `e^{i k·x}` with eigenvalues `λ(k)` has
//! independent coefficients with
//!
//! ```text
//! E|b_k|² = v(k) = λ(k) / |D|,      |D| = Lx Ly,
//! ```
//!
//! (Karhunen–Loève with the orthonormal basis `e^{i k·x}/√|D|`): complex `b_k` have independent
//! real and imaginary parts `N(0, v/2)`; self-conjugate ones (`k ≡ −k` on the grid: the mean and
//! the Nyquist modes) are real `N(0, v)`. The covariance kernel is `c(r) = Σ_k v(k) e^{i k·r}` and
//! the pointwise variance is `c(0) = Σ_k v(k)`, which tends to the whole-plane value as `|D|` grows.
//! [`Covariance`] gives `λ`:
//!
//! - **FNO** ([`GrfParams`]): `C = σ² (−Δ + τ²)^(−α)`, `λ(k) = σ² (|k|² + τ²)^(−α)` with physical
//!   wavenumbers `|k|²`; the spectrum falls as `|k|^(−2α)` for `|k| ≫ τ`.
//! - **Matérn** ([`MaternParams`]): `λ(k) = S(k) = σ² 2π ℓ² (1 + ℓ²|k|²/(2ν))^(−(ν + 1))`, the
//!   two-dimensional Matérn spectral density (`∝ (2ν/ℓ² + |k|²)^(−(ν + 1))`), falling as
//!   `|k|^(−2(ν + 1))`. [`MaternNormalisation::Grid`] instead rescales it so that `Σ_k v(k) = σ²`
//!   over the grid's modes, making the pointwise variance of the grid field exactly `σ²`.
//!
//! The mean mode is zero unless `mean_zero` is `false`.
//!
//! # Relation to FNO's `GaussianRF`
//!
//! FNO (`data_generation/navier_stokes/random_fields.py`, `GaussianRF(2, s, alpha=2.5, tau=7)`)
//! on the unit square multiplies complex normals `c_k` (`E|c_k|² = 1`) by
//! `sqrt_eig = s² √2 σ (4π²|m|² + τ²)^(−α/2)` over the full `s × s` set of integer modes `m`
//! (`sqrt_eig[0,0] = 0`), applies `ifftn` (which divides by `s²`) and keeps the real part. Taking
//! the real part halves each mode's variance and the `√2` restores it: the field is
//! `Σ_m b_m e^{2πi m·x}` with `E|b_m|² = σ² (4π²|m|² + τ²)^(−α)` for every mode, Nyquist ones
//! included. That is exactly `v(k)` above with `|D| = 1`, so [`GrfParams::default`] (with
//! `σ = τ^(α − 1) = 7^1.5`) gives FNO's distribution (not its samples: the random numbers differ).
//! On other domains `v(k)` carries the factor `1/|D|`.
//!
//! # Discrete spectrum and resolution
//!
//! Samples are made in Fourier space and transformed back once, so the grid's unnormalised DFT of
//! a sample is `f̂(k) = nx ny b_k` and `E|f̂(k)|² = (nx ny)² v(k)` exactly.
//! [`Covariance::mode_variances`] returns `v(k)`; it depends on the wavenumber and the domain but
//! not on the grid size (except with [`MaternNormalisation::Grid`], whose constant changes with
//! the resolved modes, by a relative `O((ℓ k_Nyquist)^(−2ν))`). Moreover the draw order below
//! gives each integer mode `(mx, my)` the same random number on every grid: for one
//! `(seed, index)`, a sample on a coarse grid is the spectral truncation of the sample on a finer
//! grid of the same domain, apart from the coarse grid's Nyquist row and column (where the two
//! modes `±n/2` are one).
//!
//! # Draw order
//!
//! Every draw comes from [`stream`]`(seed, index)`. Integer modes with `mx ≥ 0` are numbered in
//! square shells `r = max(mx, |my|) = 0, 1, 2, …`; shell `r` takes positions
//! `r(2r − 1) .. (r + 1)(2r + 1)`: first the column `mx = r`, `my = −r..=r`, then for
//! `mx = 0..r` the pair `my = −r`, `my = r`. Position `p` reads the 64-bit outputs `2p` and
//! `2p + 1` of the stream (ChaCha word offset `4p`, reached by seeking) and turns them into a
//! standard complex normal `ξ = √(−ln u₁) e^{2πi u₂}` (Box–Muller, 53-bit `u₁ ∈ (0, 1]`,
//! `u₂ ∈ [0, 1)`). A stored cell `(my, mx)` of the half-plane spectrum, `a = nx ny √v(k)`, gets:
//!
//! - `0 < mx < nx/2`: `a ξ(mx, my)` (the y-Nyquist row uses `my = −ny/2`);
//! - `mx ∈ {0, nx/2}` (the columns where the half-plane holds both `k` and `−k`): `a ξ(mx, my)`
//!   for `0 < my < ny/2`, its conjugate for `−my`, and `a √2 Re ξ(mx, |my|)` for the
//!   self-conjugate `my ∈ {0, −ny/2}`;
//! - modes with `v(k) = 0` draw nothing.
//!
//! # Divergence-free velocity
//!
//! A random streamfunction `ψ` with the chosen covariance gives `u = ∂ψ/∂y`, `v = −∂ψ/∂x`,
//! computed on the sampled coefficients: `û = i ky ψ̂`, `v̂ = −i kx ψ̂`. The Nyquist row and column
//! of `ψ̂` are dropped first: an odd derivative of a Nyquist mode is not representable (the
//! derivative wavenumbers vanish there), and keeping `∂/∂y` of an x-Nyquist mode would break
//! `ω = −Δψ`. So the velocity is exactly `∇⊥ψ̃` for `ψ̃` = the streamfunction sample without its
//! Nyquist modes, `∇·u = 0` and `ω = −Δψ̃` to rounding. [`VelocityScale`] optionally sets the
//! RMS speed `⟨u² + v²⟩^(1/2)`.
//!
//! ```
//! use fieldflow_pde::{Grid2d, random::{Covariance, GrfParams, sample}};
//! let grid = Grid2d::square(64, 1.0).unwrap();
//! let cov = Covariance::Fno(GrfParams::default()); // FNO's Navier–Stokes initial condition
//! let a = sample(&grid, &cov, 42, 0).unwrap();
//! assert_eq!(a, sample(&grid, &cov, 42, 0).unwrap());
//! assert!(a.mean().unwrap().abs() < 1e-12);
//! ```

mod covariance;
mod draw;
mod fitted;
#[cfg(test)]
mod tests;

use std::ops::Range;

use ndarray::{Array2, Array3, Array4, ArrayViewMut3, Axis, s};
use num_complex::Complex64;
use rayon::prelude::*;

pub use covariance::{Covariance, GrfParams, MaternNormalisation, MaternParams};
pub use fitted::FittedSpectrum;

use crate::error::{PdeError, Result};
use crate::grid::Grid2d;
use crate::rng::stream;
use covariance::{full_plane_sum, non_negative};
use draw::DrawPlan;

/// How a random velocity is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum VelocityScale {
    /// As sampled from the streamfunction covariance.
    #[default]
    Unscaled,
    /// Scale the covariance so that the expected mean square speed `E⟨u² + v²⟩` is `U²`: the
    /// velocity stays Gaussian.
    ExpectedRms(f64),
    /// Rescale each sample so that its RMS speed `⟨u² + v²⟩^(1/2)` is exactly `U` (the velocity is
    /// then no longer Gaussian).
    SampleRms(f64),
}

impl VelocityScale {
    /// Checks the target speed.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `rms` if the target is negative or not finite.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Unscaled => Ok(()),
            Self::ExpectedRms(u) | Self::SampleRms(u) => non_negative("rms", u),
        }
    }
}

/// Samples Gaussian random fields of one covariance on one grid. Building it computes the mode
/// variances and the draw plan once; sampling is then cheap and thread-safe.
#[derive(Debug, Clone)]
pub struct GrfSampler {
    grid: Grid2d,
    variances: Array2<f64>,
    plan: DrawPlan,
}

impl GrfSampler {
    /// A sampler of `N(0, C)` on `grid`.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming an invalid covariance parameter.
    pub fn new(grid: &Grid2d, covariance: &Covariance) -> Result<Self> {
        Self::from_variances(grid, covariance.mode_variances(grid)?)
    }

    /// A sampler of the Gaussian field with the mode variances `variances` (spectral layout of
    /// `grid`, as [`Covariance::mode_variances`]; e.g. a [`FittedSpectrum`]'s).
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `variances` for a wrong shape or a negative or non-finite
    /// entry.
    pub fn from_variances(grid: &Grid2d, variances: Array2<f64>) -> Result<Self> {
        if variances.dim() != (grid.ny(), grid.nkx()) || variances.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(PdeError::Parameter {
                name: "variances",
                value: f64::NAN,
                reason: "must be finite, non-negative and in the grid's spectral layout (ny, nx/2 + 1)",
            });
        }
        let n = (grid.nx() * grid.ny()) as f64;
        let amp = variances.mapv(|v| n * v.sqrt());
        let plan = DrawPlan::new(grid, &amp);
        Ok(Self { grid: grid.clone(), variances, plan })
    }

    /// The grid samples live on.
    pub fn grid(&self) -> &Grid2d {
        &self.grid
    }

    /// `v(k) = E|b_k|²` for each stored mode, in spectral layout: a sample's DFT has
    /// `E|f̂(k)|² = (nx ny)² v(k)`.
    pub fn mode_variances(&self) -> &Array2<f64> {
        &self.variances
    }

    /// The exact pointwise variance of the grid field, `Σ_k v(k)` over the grid's modes.
    pub fn pointwise_variance(&self) -> f64 {
        full_plane_sum(&self.grid, &self.variances)
    }

    /// The expected mean square speed `E⟨u² + v²⟩` of [`GrfSampler::sample_velocity`] without
    /// scaling: `Σ_k |k|² v(k)` over the grid's modes outside the Nyquist row and column.
    pub fn velocity_mean_square(&self) -> f64 {
        let (kx, ky) = (self.grid.kx(), self.grid.ky());
        let (nyq_x, nyq_y) = (self.grid.nx() / 2, self.grid.ny() / 2);
        let weighted = Array2::from_shape_fn(self.variances.raw_dim(), |(i, j)| {
            if j == nyq_x || i == nyq_y { 0.0 } else { (kx[j] * kx[j] + ky[i] * ky[i]) * self.variances[[i, j]] }
        });
        full_plane_sum(&self.grid, &weighted)
    }

    /// The unnormalised DFT `f̂` of sample `index` (what [`Grid2d::forward`] of
    /// [`GrfSampler::sample`] returns, to rounding), in spectral layout.
    ///
    /// # Errors
    /// None in practice: shapes are consistent by construction.
    pub fn sample_spectrum(&self, seed: u64, index: u64) -> Result<Array2<Complex64>> {
        self.plan.spectrum(&mut stream(seed, index))
    }

    /// Sample `index` of the field, `(ny, nx)`.
    ///
    /// # Errors
    /// None in practice: shapes are consistent by construction.
    pub fn sample(&self, seed: u64, index: u64) -> Result<Array2<f64>> {
        let mut spec = self.sample_spectrum(seed, index)?;
        let mut out = Array2::zeros(self.grid.shape());
        self.grid.inverse_consuming(spec.view_mut(), out.view_mut())?;
        Ok(out)
    }

    /// Samples `indices` as a batch `[n, 1, ny, nx]`, in parallel; entry `b` equals
    /// [`GrfSampler::sample`]`(seed, indices.start + b)` exactly.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `indices` if the batch does not fit in memory indexing.
    pub fn sample_batch(&self, seed: u64, indices: Range<u64>) -> Result<Array4<f64>> {
        let n = batch_len(&indices)?;
        let mut out = Array4::zeros((n, 1, self.grid.ny(), self.grid.nx()));
        out.axis_iter_mut(Axis(0)).into_par_iter().enumerate().try_for_each(|(b, mut o)| {
            let mut spec = self.sample_spectrum(seed, indices.start + b as u64)?;
            self.grid.inverse_consuming(spec.view_mut(), o.index_axis_mut(Axis(0), 0))
        })?;
        Ok(out)
    }

    /// Sample `index` of a divergence-free velocity `(2, ny, nx)`, channels `(u, v)`, whose
    /// streamfunction is [`GrfSampler::sample`]`(seed, index)` (the same draws) without its
    /// Nyquist modes.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `rms` if the target speed is invalid, or positive while the
    /// covariance carries no velocity on this grid.
    pub fn sample_velocity(&self, scale: VelocityScale, seed: u64, index: u64) -> Result<Array3<f64>> {
        let factor = self.velocity_factor(scale)?;
        let mut out = Array3::zeros((2, self.grid.ny(), self.grid.nx()));
        self.velocity_into(factor, scale, seed, index, out.view_mut())?;
        Ok(out)
    }

    /// Velocities for `indices` as a batch `[n, 2, ny, nx]`, in parallel; entry `b` equals
    /// [`GrfSampler::sample_velocity`]`(scale, seed, indices.start + b)` exactly.
    ///
    /// # Errors
    /// As [`GrfSampler::sample_velocity`] and [`GrfSampler::sample_batch`].
    pub fn sample_velocity_batch(&self, scale: VelocityScale, seed: u64, indices: Range<u64>) -> Result<Array4<f64>> {
        let factor = self.velocity_factor(scale)?;
        let n = batch_len(&indices)?;
        let mut out = Array4::zeros((n, 2, self.grid.ny(), self.grid.nx()));
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .try_for_each(|(b, o)| self.velocity_into(factor, scale, seed, indices.start + b as u64, o))?;
        Ok(out)
    }

    /// The factor applied to the spectrum before the inverse transform.
    fn velocity_factor(&self, scale: VelocityScale) -> Result<f64> {
        scale.validate()?;
        let (target, expected) = match scale {
            VelocityScale::Unscaled => return Ok(1.0),
            VelocityScale::ExpectedRms(u) => (u, true),
            // Sample scaling happens after the transform; only its feasibility is checked here.
            VelocityScale::SampleRms(u) => (u, false),
        };
        if target == 0.0 {
            return Ok(0.0);
        }
        let ms = self.velocity_mean_square();
        if ms <= 0.0 {
            return Err(PdeError::Parameter {
                name: "rms",
                value: target,
                reason: "cannot be reached: the covariance gives zero velocity on this grid",
            });
        }
        Ok(if expected { target / ms.sqrt() } else { 1.0 })
    }

    fn velocity_into(
        &self,
        factor: f64,
        scale: VelocityScale,
        seed: u64,
        index: u64,
        mut out: ArrayViewMut3<f64>,
    ) -> Result<()> {
        let psi = self.sample_spectrum(seed, index)?;
        let (kx, ky) = (self.grid.kx(), self.grid.ky());
        let (nyq_x, nyq_y) = (self.grid.nx() / 2, self.grid.ny() / 2);
        let i = Complex64::new(0.0, factor);
        let mut su = psi.clone();
        let mut sv = psi;
        for (j, (mut cu, mut cv)) in su.columns_mut().into_iter().zip(sv.columns_mut()).enumerate() {
            for (r, (u, v)) in cu.iter_mut().zip(cv.iter_mut()).enumerate() {
                if j == nyq_x || r == nyq_y {
                    (*u, *v) = (Complex64::ZERO, Complex64::ZERO);
                } else {
                    (*u, *v) = (*u * i * ky[r], *v * -i * kx[j]);
                }
            }
        }
        self.grid.inverse_consuming(su.view_mut(), out.slice_mut(s![0, .., ..]))?;
        self.grid.inverse_consuming(sv.view_mut(), out.slice_mut(s![1, .., ..]))?;
        if let VelocityScale::SampleRms(target) = scale {
            let ms = out.iter().map(|x| x * x).sum::<f64>() / (self.grid.nx() * self.grid.ny()) as f64;
            if ms > 0.0 {
                let c = target / ms.sqrt();
                out.mapv_inplace(|x| c * x);
            }
        }
        Ok(())
    }
}

fn batch_len(indices: &Range<u64>) -> Result<usize> {
    let n = indices.end.saturating_sub(indices.start);
    usize::try_from(n).map_err(|_| PdeError::Parameter {
        name: "indices",
        value: n as f64,
        reason: "too many samples for one batch",
    })
}

/// Sample `index` of `N(0, C)` on `grid`, `(ny, nx)`, from [`stream`]`(seed, index)`.
///
/// # Errors
/// [`PdeError::Parameter`] naming an invalid covariance parameter.
pub fn sample(grid: &Grid2d, covariance: &Covariance, seed: u64, index: u64) -> Result<Array2<f64>> {
    GrfSampler::new(grid, covariance)?.sample(seed, index)
}

/// Samples `indices` of `N(0, C)` as a batch `[n, 1, ny, nx]`, in parallel, identical to
/// [`sample`] per index.
///
/// # Errors
/// [`PdeError::Parameter`] naming an invalid covariance parameter.
pub fn sample_batch(grid: &Grid2d, covariance: &Covariance, seed: u64, indices: Range<u64>) -> Result<Array4<f64>> {
    GrfSampler::new(grid, covariance)?.sample_batch(seed, indices)
}

/// A divergence-free random velocity `(2, ny, nx)` whose streamfunction is
/// [`sample`]`(grid, covariance, seed, index)` without its Nyquist modes.
///
/// # Errors
/// [`PdeError::Parameter`] naming an invalid covariance parameter or target speed (`rms`).
pub fn sample_velocity(
    grid: &Grid2d,
    covariance: &Covariance,
    scale: VelocityScale,
    seed: u64,
    index: u64,
) -> Result<Array3<f64>> {
    GrfSampler::new(grid, covariance)?.sample_velocity(scale, seed, index)
}

/// Divergence-free random velocities `[n, 2, ny, nx]` for `indices`, in parallel, identical to
/// [`sample_velocity`] per index.
///
/// # Errors
/// [`PdeError::Parameter`] naming an invalid covariance parameter or target speed (`rms`).
pub fn sample_velocity_batch(
    grid: &Grid2d,
    covariance: &Covariance,
    scale: VelocityScale,
    seed: u64,
    indices: Range<u64>,
) -> Result<Array4<f64>> {
    GrfSampler::new(grid, covariance)?.sample_velocity_batch(scale, seed, indices)
}
