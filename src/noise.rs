//! Source measures of flow matching (the distribution at `t = 0`): white noise, Gaussian
//! processes, and divergence-free Gaussian velocities, with their log-densities.
//!
//! # Measures
//!
//! - [`SourceMeasure::White`]: every grid value independent `N(0, 1)`.
//! - [`SourceMeasure::GaussianProcess`]: each channel an independent stationary Gaussian field
//!   `N(0, C)` on the periodic grid ([`fieldflow_pde::random`]): Fourier coefficients
//!   `f = Σ_k b_k e^{ik·x}` independent with `E|b_k|² = v(k)`, the mode variances of the
//!   [`Covariance`]. Draws are resolution-consistent: a coarse sample is the spectral truncation
//!   of the fine sample of the same `(seed, index)`.
//! - [`SourceMeasure::DivergenceFreeGp`]: two channels `(u, v) = (∂ψ/∂y, −∂ψ/∂x)` for a
//!   Gaussian streamfunction `ψ ~ N(0, C)` without its Nyquist modes (Leray-consistent: exactly
//!   solenoidal on the grid), as [`GrfSampler::sample_velocity`].
//!
//! # Seeding
//!
//! Sample `i` of `(seed, indices)` depends only on `(seed, i)`, so batches, shards and parallel
//! runs agree. Channel `c` of sample `i` (white and GP) draws from
//! [`substream`]`(seed, i, c)`, which for `c = 0` is [`stream`](fieldflow_pde::rng::stream)`(seed, i)`:
//! the channels are independent, and channel `c` is the same whatever the number of channels.
//! The divergence-free velocity uses `stream(seed, i)` for its streamfunction. A caller that draws
//! anything else for sample `i` (times, dropout) must use another seed or a purpose not in
//! `0..channels`.
//!
//! # Log-densities
//!
//! On an `nx × ny` grid (`N = nx ny` values) the grid field of a GP is `N(0, C)` with
//! `C = Σ_k N v(k) e_k e_k*`, `e_k = e^{ik·x}/√N` orthonormal over the `N` grid modes. In the real
//! orthonormal basis (cosines and sines of each pair `±k`, the real self-conjugate modes) every
//! coordinate of mode `k` has variance `N v(k)`, and with the unnormalised DFT `f̂(k) = N b_k`
//!
//! ```text
//! log p(f) = −½ Σ_k |f̂(k)|² / (N² v(k)) − ½ Σ_k ln(2π N v(k)),
//! ```
//!
//! both sums over the `N` modes of the full plane. On the stored half-plane `(ny, nx/2 + 1)` the
//! columns `0 < mx < nx/2` stand for two modes (`k` and `−k`), the columns `mx = 0` and
//! `mx = nx/2` hold both members of each pair as separate cells, and the self-conjugate modes
//! (the mean and the Nyquist ones) count once. Modes with `v(k) = 0` (the mean when
//! `mean_zero`) make the measure degenerate: the density is taken on its support, w.r.t. the
//! Lebesgue measure of that subspace, i.e. those modes are left out of both sums and the
//! component of `f` along them is ignored. [`SourceSampler::support_dimension`] counts the
//! remaining coordinates. Channels add their log-densities; white noise is
//! `−½ Σ x² − (M/2) ln 2π` over its `M` values.
//!
//! For the divergence-free velocity the support is the span of `∇⊥(cos k·x)`, `∇⊥(sin k·x)` over
//! the modes with `v(k) > 0`, `k ≠ 0`, outside the Nyquist row and column. The streamfunction
//! coordinates `ψ̂ = ω̂/|k|²` (`ω` the vorticity, i.e. the Leray projection of the input) are
//! Gaussian as above; a unit streamfunction coordinate of mode `k` is a velocity of norm `|k|`,
//! so the density of the velocity w.r.t. the Lebesgue measure of its support (in grid values,
//! the measure white noise uses) is
//!
//! ```text
//! log p(u) = −½ Σ_k |ψ̂(k)|² / (N² v(k)) − ½ Σ_k ln(2π N v(k) |k|²),
//! ```
//!
//! the streamfunction-coordinate density shifted by the constant `−½ Σ_k ln |k|²`. Any
//! divergent part, mean flow and Nyquist content of the input is ignored.
//!
//! Length: 477 lines of code, 278 of tests; kept together as one subject (the source measures, their samplers and exact log-densities).

use std::f64::consts::PI;
use std::ops::Range;

use burn::tensor::{Device, Tensor};
use std::sync::Arc;

use fieldflow_pde::random::{Covariance, FittedSpectrum, GrfParams, GrfSampler, VelocityScale};
use fieldflow_pde::rng::{SampleRng, substream};
use fieldflow_pde::{Complex64, Grid2d, PdeError};
use ndarray::{Array1, Array2, Array4, ArrayView2, ArrayView4, Axis, s};
use rand::RngExt;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bridge::to_tensor;

/// What can go wrong sampling a source measure or evaluating its density.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum NoiseError {
    /// An invalid covariance parameter or grid, from the numerics.
    #[error(transparent)]
    Pde(#[from] PdeError),
    /// The number of channels does not suit the measure.
    #[error("invalid `channels` = {channels} for the {measure} source: {reason}")]
    Channels {
        /// The measure's name.
        measure: &'static str,
        /// The rejected number of channels.
        channels: usize,
        /// What it must be.
        reason: &'static str,
    },
    /// An array does not have the shape of the measure's fields.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which argument had the wrong shape.
        what: &'static str,
        /// The shape that was expected (`0` for the batch: any).
        expected: Vec<usize>,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// A fitted source measure without its fitted spectrum (a checkpoint written without it).
    #[error("the fitted source measure has no fitted spectrum (train the model again to fit it)")]
    Unfitted,
    /// The sample index range is empty-reversed or too large.
    #[error("invalid sample `indices` {start}..{end}: {reason}")]
    Indices {
        /// First index.
        start: u64,
        /// One past the last index.
        end: u64,
        /// Why the range is rejected.
        reason: &'static str,
    },
}

/// The distribution of the flow's starting point `x0`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SourceMeasure {
    /// Independent standard normal grid values.
    #[default]
    White,
    /// Independent stationary Gaussian fields per channel.
    GaussianProcess(Covariance),
    /// Divergence-free velocities `(u, v)` of a Gaussian streamfunction; two channels.
    DivergenceFreeGp(Covariance),
    /// Independent stationary Gaussian fields per channel with mode variances fitted to the
    /// training data ([`FittedSpectrum::fit_fields`]): the source has the data's spectrum.
    Fitted(Arc<FittedSpectrum>),
    /// Divergence-free velocities of a Gaussian streamfunction whose mode variances are fitted
    /// to the training velocities ([`FittedSpectrum::fit_streamfunction`]); two channels.
    DivergenceFreeFitted(Arc<FittedSpectrum>),
}

impl SourceMeasure {
    /// A short name for messages: `white`, `gaussian-process` or `divergence-free-gp`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::White => "white",
            Self::GaussianProcess(_) => "gaussian-process",
            Self::DivergenceFreeGp(_) => "divergence-free-gp",
            Self::Fitted(_) => "fitted",
            Self::DivergenceFreeFitted(_) => "divergence-free-fitted",
        }
    }

    /// Prepares sampling and density evaluation of `channels`-channel fields on `grid` (mode
    /// variances and draw plans are computed once).
    ///
    /// # Errors
    /// [`NoiseError::Channels`] for zero channels, or other than two for
    /// [`SourceMeasure::DivergenceFreeGp`]; [`NoiseError::Pde`] naming an invalid covariance
    /// parameter.
    pub fn sampler(&self, grid: &Grid2d, channels: usize) -> Result<SourceSampler, NoiseError> {
        let bad = |reason| NoiseError::Channels { measure: self.name(), channels, reason };
        let (grf, density) = match self {
            Self::White if channels == 0 => return Err(bad("must be at least 1")),
            Self::White => (None, None),
            Self::GaussianProcess(_) if channels == 0 => return Err(bad("must be at least 1")),
            Self::DivergenceFreeGp(_) | Self::DivergenceFreeFitted(_) if channels != 2 => {
                return Err(bad("must be 2 (the velocity components u, v)"));
            }
            Self::Fitted(_) if channels == 0 => return Err(bad("must be at least 1")),
            Self::GaussianProcess(cov) => {
                let grf = GrfSampler::new(grid, cov)?;
                let density = SpectralDensity::field(grid, grf.mode_variances());
                (Some(grf), Some(density))
            }
            Self::DivergenceFreeGp(cov) => {
                let grf = GrfSampler::new(grid, cov)?;
                let density = SpectralDensity::velocity(grid, grf.mode_variances());
                (Some(grf), Some(density))
            }
            Self::Fitted(fit) => {
                let grf = GrfSampler::from_variances(grid, fit.mode_variances(grid)?)?;
                let density = SpectralDensity::field(grid, grf.mode_variances());
                (Some(grf), Some(density))
            }
            Self::DivergenceFreeFitted(fit) => {
                let grf = GrfSampler::from_variances(grid, fit.mode_variances(grid)?)?;
                let density = SpectralDensity::velocity(grid, grf.mode_variances());
                (Some(grf), Some(density))
            }
        };
        Ok(SourceSampler { measure: self.clone(), grid: grid.clone(), channels, grf, density })
    }

    /// Samples `indices` as a tensor `[n, channels, ny, nx]`; sample `i` comes from the streams
    /// of `(seed, i)` (see the [module documentation](self)).
    ///
    /// # Errors
    /// As [`SourceMeasure::sampler`] and [`SourceSampler::sample_array`].
    pub fn sample(
        &self,
        grid: &Grid2d,
        channels: usize,
        seed: u64,
        indices: Range<u64>,
        device: &Device,
    ) -> Result<Tensor<4>, NoiseError> {
        self.sampler(grid, channels)?.sample(seed, indices, device)
    }

    /// Samples `indices` as an `f64` array `[n, channels, ny, nx]`.
    ///
    /// # Errors
    /// As [`SourceMeasure::sampler`] and [`SourceSampler::sample_array`].
    pub fn sample_array(
        &self,
        grid: &Grid2d,
        channels: usize,
        seed: u64,
        indices: Range<u64>,
    ) -> Result<Array4<f64>, NoiseError> {
        self.sampler(grid, channels)?.sample_array(seed, indices)
    }

    /// The log-density of each sample of `x` (`[n, channels, ny, nx]`), in `f64`.
    ///
    /// # Errors
    /// As [`SourceMeasure::sampler`] (with the channels of `x`) and [`SourceSampler::log_density`].
    pub fn log_density(&self, grid: &Grid2d, x: ArrayView4<f64>) -> Result<Array1<f64>, NoiseError> {
        self.sampler(grid, x.shape()[1])?.log_density(x)
    }
}

/// A [`SourceMeasure`] prepared for one grid and number of channels.
#[derive(Debug, Clone)]
pub struct SourceSampler {
    measure: SourceMeasure,
    grid: Grid2d,
    channels: usize,
    grf: Option<GrfSampler>,
    density: Option<SpectralDensity>,
}

impl SourceSampler {
    /// The measure.
    pub fn measure(&self) -> &SourceMeasure {
        &self.measure
    }

    /// The grid.
    pub fn grid(&self) -> &Grid2d {
        &self.grid
    }

    /// The number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The dimension of the measure's support: the number of coordinates its log-density is
    /// taken over (`channels · nx · ny` for white noise; fewer where modes have zero variance).
    pub fn support_dimension(&self) -> usize {
        match &self.density {
            None => self.channels * self.grid.nx() * self.grid.ny(),
            Some(d) if d.velocity => d.dimension,
            Some(d) => self.channels * d.dimension,
        }
    }

    /// Samples `indices` as an `f64` array `[n, channels, ny, nx]`, in parallel; entry `b` depends
    /// only on `(seed, indices.start + b)`.
    ///
    /// # Errors
    /// [`NoiseError::Indices`] if `indices.end < indices.start` or the batch does not fit in
    /// memory indexing.
    pub fn sample_array(&self, seed: u64, indices: Range<u64>) -> Result<Array4<f64>, NoiseError> {
        let n = batch_len(&indices)?;
        let (ny, nx) = self.grid.shape();
        let grf = match (&self.measure, &self.grf) {
            (SourceMeasure::DivergenceFreeGp(_) | SourceMeasure::DivergenceFreeFitted(_), Some(grf)) => {
                return Ok(grf.sample_velocity_batch(VelocityScale::Unscaled, seed, indices)?);
            }
            (_, grf) => grf,
        };
        let mut out = Array4::zeros((n, self.channels, ny, nx));
        out.axis_iter_mut(Axis(0)).into_par_iter().enumerate().try_for_each(|(b, mut sample)| {
            let index = indices.start + b as u64;
            for (c, mut field) in sample.axis_iter_mut(Axis(0)).enumerate() {
                match grf {
                    Some(grf) => {
                        let mut spec = grf.sample_spectrum(channel_seed(seed, c as u64), index)?;
                        self.grid.inverse_consuming(spec.view_mut(), field)?;
                    }
                    None => {
                        let mut rng: SampleRng = substream(seed, index, c as u64);
                        field.iter_mut().for_each(|x| *x = rng.sample(StandardNormal));
                    }
                }
            }
            Ok::<(), PdeError>(())
        })?;
        Ok(out)
    }

    /// Samples `indices` as an `f32` tensor `[n, channels, ny, nx]` on `device` (the `f64`
    /// samples of [`SourceSampler::sample_array`], rounded).
    ///
    /// # Errors
    /// As [`SourceSampler::sample_array`].
    pub fn sample(&self, seed: u64, indices: Range<u64>, device: &Device) -> Result<Tensor<4>, NoiseError> {
        Ok(to_tensor::<4, _>(self.sample_array(seed, indices)?.view(), device))
    }

    /// The log-density of each sample of `x` (`[n, channels, ny, nx]`) under the measure, on its
    /// support (see the [module documentation](self)), in `f64`.
    ///
    /// # Errors
    /// [`NoiseError::Shape`] if `x` is not `[n, channels, ny, nx]`.
    pub fn log_density(&self, x: ArrayView4<f64>) -> Result<Array1<f64>, NoiseError> {
        let (ny, nx) = self.grid.shape();
        let expected = [x.shape()[0], self.channels, ny, nx];
        if x.shape() != expected {
            return Err(NoiseError::Shape { what: "x", expected: expected.to_vec(), got: x.shape().to_vec() });
        }
        let values: Result<Vec<f64>, PdeError> = x
            .axis_iter(Axis(0))
            .into_par_iter()
            .map(|sample| match &self.density {
                None => {
                    let m = sample.len() as f64;
                    Ok(-0.5 * sample.iter().map(|v| v * v).sum::<f64>() - 0.5 * m * (2.0 * PI).ln())
                }
                Some(d) if d.velocity => {
                    let (u, v) =
                        (self.grid.fft(sample.slice(s![0, .., ..]))?, self.grid.fft(sample.slice(s![1, .., ..]))?);
                    Ok(d.evaluate(vorticity_spectrum(&self.grid, &u, &v).view()))
                }
                Some(d) => sample.axis_iter(Axis(0)).map(|f| Ok(d.evaluate(self.grid.fft(f)?.view()))).sum(),
            })
            .collect();
        Ok(Array1::from(values?))
    }
}

/// The seed whose [`stream`](fieldflow_pde::rng::stream)`(·, i)` is
/// [`substream`]`(seed, i, channel)`; it keys channel `channel` of a GP sample.
fn channel_seed(seed: u64, channel: u64) -> u64 {
    seed ^ channel.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn batch_len(indices: &Range<u64>) -> Result<usize, NoiseError> {
    let err = |reason| NoiseError::Indices { start: indices.start, end: indices.end, reason };
    let n = indices.end.checked_sub(indices.start).ok_or_else(|| err("end is before start"))?;
    usize::try_from(n).map_err(|_| err("too many samples for one batch"))
}

/// `ω̂ = i kx v̂ − i ky û` in spectral layout.
fn vorticity_spectrum(grid: &Grid2d, u: &Array2<Complex64>, v: &Array2<Complex64>) -> Array2<Complex64> {
    let (kx, ky) = (grid.kx_deriv(), grid.ky_deriv());
    let i = Complex64::new(0.0, 1.0);
    Array2::from_shape_fn(u.raw_dim(), |(r, j)| i * (kx[j] * v[[r, j]] - ky[r] * u[[r, j]]))
}

/// A Gaussian log-density diagonal in the half-plane Fourier basis:
/// `−½ Σ_cells w |ĝ|² + constant`, with `g` the field (GP) or the vorticity (velocity).
#[derive(Debug, Clone)]
struct SpectralDensity {
    /// `multiplicity / (N² v)` per stored cell on the support (times `|k|⁻⁴` for velocities),
    /// zero elsewhere.
    weights: Array2<f64>,
    /// `−½ Σ multiplicity · ln(2π N v (|k|²))` over the support.
    constant: f64,
    /// Full-plane modes on the support.
    dimension: usize,
    /// Whether the density is of a divergence-free velocity.
    velocity: bool,
}

impl SpectralDensity {
    /// A scalar GP with mode variances `v`.
    fn field(grid: &Grid2d, v: &Array2<f64>) -> Self {
        Self::build(grid, v, false)
    }

    /// The divergence-free velocity of a streamfunction with mode variances `v`.
    fn velocity(grid: &Grid2d, v: &Array2<f64>) -> Self {
        Self::build(grid, v, true)
    }

    fn build(grid: &Grid2d, v: &Array2<f64>, velocity: bool) -> Self {
        let (nx, ny) = (grid.nx(), grid.ny());
        let n = (nx * ny) as f64;
        let (kx, ky) = (grid.kx(), grid.ky());
        let mut weights = Array2::zeros(v.raw_dim());
        let (mut constant, mut dimension) = (0.0, 0);
        for ((r, j), &var) in v.indexed_iter() {
            let k2 = kx[j] * kx[j] + ky[r] * ky[r];
            let on_support = var > 0.0 && (!velocity || (k2 > 0.0 && j != nx / 2 && r != ny / 2));
            if !on_support {
                continue;
            }
            let m = if j == 0 || j == nx / 2 { 1 } else { 2 };
            let scale = if velocity { k2 } else { 1.0 };
            weights[[r, j]] = m as f64 / (n * n * var * scale * scale);
            constant -= 0.5 * m as f64 * (2.0 * PI * n * var * scale).ln();
            dimension += m;
        }
        Self { weights, constant, dimension, velocity }
    }

    fn evaluate(&self, spectrum: ArrayView2<Complex64>) -> f64 {
        let q: f64 = self.weights.iter().zip(spectrum.iter()).map(|(w, c)| w * c.norm_sqr()).sum();
        -0.5 * q + self.constant
    }
}

/// Source measures by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    /// Independent standard normal grid values.
    #[default]
    White,
    /// Independent Gaussian random fields `σ² (−Δ + τ²)^(−α)` per channel.
    Gp,
    /// Divergence-free velocities of a Gaussian streamfunction (two channels).
    DivergenceFreeGp,
    /// Gaussian fields per channel with the training data's variance per Fourier mode.
    Fitted,
    /// Divergence-free velocities with the training velocities' energy per Fourier mode.
    DivergenceFreeFitted,
}

impl NoiseKind {
    /// Whether the measure is fitted to the training data.
    pub fn is_fitted(self) -> bool {
        matches!(self, Self::Fitted | Self::DivergenceFreeFitted)
    }
}

/// A source measure by name and parameters: the `[noise]` section of a training config, and
/// what a checkpoint records (its serde form is part of the checkpoint format).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseConfig {
    /// white | gp | divergence_free_gp | fitted | divergence_free_fitted.
    pub kind: NoiseKind,
    /// GRF smoothness `α` (the GP kinds).
    pub alpha: f64,
    /// GRF inverse length scale `τ`.
    pub tau: f64,
    /// GRF amplitude `σ` (absent: FNO's `τ^(α−1)`).
    pub sigma: Option<f64>,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        Self { kind: NoiseKind::White, alpha: 2.5, tau: 7.0, sigma: None }
    }
}

impl NoiseConfig {
    /// The source measure; the fitted kinds take the spectrum [`NoiseConfig::fit`] made.
    ///
    /// # Errors
    /// [`NoiseError::Unfitted`] for a fitted kind without `fitted`.
    pub fn measure(&self, fitted: Option<&FittedSpectrum>) -> Result<SourceMeasure, NoiseError> {
        let cov = Covariance::Fno(GrfParams { alpha: self.alpha, tau: self.tau, sigma: self.sigma, mean_zero: true });
        let fit = || fitted.cloned().map(Arc::new).ok_or(NoiseError::Unfitted);
        Ok(match self.kind {
            NoiseKind::White => SourceMeasure::White,
            NoiseKind::Gp => SourceMeasure::GaussianProcess(cov),
            NoiseKind::DivergenceFreeGp => SourceMeasure::DivergenceFreeGp(cov),
            NoiseKind::Fitted => SourceMeasure::Fitted(fit()?),
            NoiseKind::DivergenceFreeFitted => SourceMeasure::DivergenceFreeFitted(fit()?),
        })
    }

    /// For a fitted kind, the spectrum of the (standardised) training fields `train`
    /// (`[n, channels, ny, nx]` on `grid`): per channel ([`FittedSpectrum::fit_fields`]) or of the
    /// velocity's streamfunction ([`FittedSpectrum::fit_streamfunction`]); `None` for the others.
    ///
    /// # Errors
    /// [`NoiseError::Pde`] if `train` is empty or not on `grid` (or has other than two channels
    /// for the divergence-free kind).
    pub fn fit(&self, grid: &Grid2d, train: ArrayView4<f64>) -> Result<Option<FittedSpectrum>, NoiseError> {
        Ok(match self.kind {
            NoiseKind::Fitted => Some(FittedSpectrum::fit_fields(grid, train)?),
            NoiseKind::DivergenceFreeFitted => Some(FittedSpectrum::fit_streamfunction(grid, train)?),
            _ => None,
        })
    }
}

/// A sampler of the source measure (`t = 0`) for states of rank `D`.
pub trait NoiseSource<const D: usize> {
    /// Source samples `indices` as a `[n, ...]` tensor on `device`; sample `i` depends only on
    /// `(seed, i)`.
    ///
    /// # Errors
    /// Whatever the sampler reports.
    fn draw(&self, seed: u64, indices: Range<u64>, device: &Device) -> Result<Tensor<D>, NoiseError>;
}

impl NoiseSource<4> for SourceSampler {
    fn draw(&self, seed: u64, indices: Range<u64>, device: &Device) -> Result<Tensor<4>, NoiseError> {
        self.sample(seed, indices, device)
    }
}

/// Standard normal vectors in `ℝ^dim` (the source of toy problems); sample `i` draws from
/// `substream(seed, i, 0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GaussianNoise {
    /// The dimension.
    pub dim: usize,
}

impl GaussianNoise {
    /// The samples `indices` as an `f64` array `[n, dim]`.
    pub fn sample_array(&self, seed: u64, indices: Range<u64>) -> ndarray::Array2<f64> {
        let n = indices.end.saturating_sub(indices.start) as usize;
        let mut out = ndarray::Array2::zeros((n, self.dim));
        for (row, i) in out.rows_mut().into_iter().zip(indices) {
            let mut rng = substream(seed, i, 0);
            for v in row {
                *v = rng.sample(StandardNormal);
            }
        }
        out
    }
}

impl NoiseSource<2> for GaussianNoise {
    fn draw(&self, seed: u64, indices: Range<u64>, device: &Device) -> Result<Tensor<2>, NoiseError> {
        Ok(crate::bridge::to_tensor::<2, _>(self.sample_array(seed, indices).view(), device))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use fieldflow_pde::grid::signed_index;
    use fieldflow_pde::operators::{divergence, gradient, vorticity};
    use fieldflow_pde::random::{GrfParams, MaternNormalisation, MaternParams};
    use fieldflow_pde::rng::stream;
    use ndarray::{ArrayView1, Ix4};

    fn fno(alpha: f64, tau: f64, sigma: f64, mean_zero: bool) -> Covariance {
        Covariance::Fno(GrfParams { alpha, tau, sigma: Some(sigma), mean_zero })
    }

    /// Log-determinant and solution of `a x = b` by Cholesky (`a` symmetric positive definite).
    fn cholesky_solve(a: &Array2<f64>, b: ArrayView1<f64>) -> (f64, Vec<f64>) {
        let n = a.nrows();
        let mut l = Array2::<f64>::zeros((n, n));
        for i in 0..n {
            for j in 0..=i {
                let s: f64 = a[[i, j]] - (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum::<f64>();
                l[[i, j]] = if i == j { s.sqrt() } else { s / l[[j, j]] };
            }
        }
        let mut y = vec![0.0; n];
        for i in 0..n {
            y[i] = (b[i] - (0..i).map(|k| l[[i, k]] * y[k]).sum::<f64>()) / l[[i, i]];
        }
        let mut x = vec![0.0; n];
        for i in (0..n).rev() {
            x[i] = (y[i] - (i + 1..n).map(|k| l[[k, i]] * x[k]).sum::<f64>()) / l[[i, i]];
        }
        (2.0 * (0..n).map(|i| l[[i, i]].ln()).sum::<f64>(), x)
    }

    /// Variance of the full-plane mode `(mx, my)` from the half-plane layout (`v(−k) = v(k)`).
    fn full_plane_variance(v: &Array2<f64>, mx: isize, my: isize, nx: usize, ny: usize) -> f64 {
        let (mx, my) = if mx < 0 && mx != -(nx as isize) / 2 { (-mx, -my) } else { (mx.abs(), my) };
        v[[my.rem_euclid(ny as isize) as usize, mx as usize]]
    }

    #[test]
    fn white_log_density_is_the_standard_normal_density() {
        let grid = Grid2d::new(6, 4, 1.0, 1.0).unwrap();
        let x = SourceMeasure::White.sample_array(&grid, 3, 11, 0..4).unwrap();
        let got = SourceMeasure::White.log_density(&grid, x.view()).unwrap();
        for (b, sample) in x.axis_iter(Axis(0)).enumerate() {
            let want: f64 = sample.iter().map(|&v| (-0.5 * v * v).exp() / (2.0 * PI).sqrt()).map(f64::ln).sum();
            assert!((got[b] - want).abs() <= 1e-12 * want.abs(), "{} vs {want}", got[b]);
        }
    }

    #[test]
    fn gp_log_density_matches_the_dense_multivariate_normal() {
        let grid = Grid2d::new(6, 4, 1.3, 0.7).unwrap();
        let (nx, ny) = (grid.nx(), grid.ny());
        let matern = MaternParams {
            variance: 1.5,
            length_scale: 0.2,
            nu: 1.5,
            mean_zero: false,
            normalisation: MaternNormalisation::Continuum,
        };
        for cov in [fno(2.0, 3.0, 5.0, false), Covariance::Matern(matern)] {
            let measure = SourceMeasure::GaussianProcess(cov);
            let v = cov.mode_variances(&grid).unwrap();
            // C[p, q] = Σ_k v(k) cos(k·(x_p − x_q)) over the full plane.
            let (xs, ys) = (grid.x(), grid.y());
            let point = |p: usize| (xs[p % nx], ys[p / nx]);
            let c = Array2::from_shape_fn((nx * ny, nx * ny), |(p, q)| {
                let ((xp, yp), (xq, yq)) = (point(p), point(q));
                let mut sum = 0.0;
                for i in 0..ny {
                    for j in 0..nx {
                        let (mx, my) = (signed_index(j, nx), signed_index(i, ny));
                        let (kx, ky) = (2.0 * PI * mx as f64 / grid.lx(), 2.0 * PI * my as f64 / grid.ly());
                        sum += full_plane_variance(&v, mx, my, nx, ny) * (kx * (xp - xq) + ky * (yp - yq)).cos();
                    }
                }
                sum
            });
            let x = measure.sample_array(&grid, 2, 3, 0..3).unwrap();
            let got = measure.log_density(&grid, x.view()).unwrap();
            for (b, sample) in x.axis_iter(Axis(0)).enumerate() {
                let mut want = 0.0;
                for field in sample.axis_iter(Axis(0)) {
                    let flat = Array1::from_iter(field.iter().copied());
                    let (logdet, sol) = cholesky_solve(&c, flat.view());
                    let quad: f64 = flat.iter().zip(&sol).map(|(a, b)| a * b).sum();
                    want += -0.5 * quad - 0.5 * logdet - 0.5 * (nx * ny) as f64 * (2.0 * PI).ln();
                }
                assert!((got[b] - want).abs() <= 1e-9 * want.abs(), "{cov:?}: {} vs dense {want}", got[b]);
            }
            assert_eq!(measure.sampler(&grid, 2).unwrap().support_dimension(), 2 * nx * ny);
        }
    }

    #[test]
    fn divergence_free_log_density_matches_the_dense_velocity_basis() {
        let grid = Grid2d::new(6, 4, 1.3, 0.7).unwrap();
        let (nx, ny) = (grid.nx(), grid.ny());
        let cov = fno(2.0, 3.0, 5.0, false);
        let v = cov.mode_variances(&grid).unwrap();
        // Columns: the velocities ∇⊥ of √(2v) cos(k·x) and √(2v) sin(k·x) for one member k of each
        // pair on the support (k ≠ 0, outside the Nyquist row and column).
        let (xs, ys) = (grid.x(), grid.y());
        let mut columns: Vec<Vec<f64>> = Vec::new();
        for j in 0..nx / 2 {
            for i in 0..ny {
                let my = signed_index(i, ny);
                if i == ny / 2 || (j == 0 && my <= 0) {
                    continue;
                }
                let (kx, ky) = (2.0 * PI * j as f64 / grid.lx(), 2.0 * PI * my as f64 / grid.ly());
                let amp = (2.0 * v[[i, j]]).sqrt();
                for phase in [0.0, PI / 2.0] {
                    // φ = amp cos(k·x − phase); u = ∂φ/∂y, v = −∂φ/∂x.
                    let d = |x: f64, y: f64| -amp * (kx * x + ky * y - phase).sin();
                    let mut col = Vec::with_capacity(2 * nx * ny);
                    col.extend((0..nx * ny).map(|p| ky * d(xs[p % nx], ys[p / nx])));
                    col.extend((0..nx * ny).map(|p| -kx * d(xs[p % nx], ys[p / nx])));
                    columns.push(col);
                }
            }
        }
        let m = columns.len();
        let gram = Array2::from_shape_fn((m, m), |(a, b)| columns[a].iter().zip(&columns[b]).map(|(p, q)| p * q).sum());
        let measure = SourceMeasure::DivergenceFreeGp(cov);
        let sampler = measure.sampler(&grid, 2).unwrap();
        assert_eq!(sampler.support_dimension(), m);
        let x = sampler.sample_array(5, 0..3).unwrap();
        let got = sampler.log_density(x.view()).unwrap();
        for (b, sample) in x.axis_iter(Axis(0)).enumerate() {
            let flat: Vec<f64> = sample.iter().copied().collect();
            let rhs = Array1::from_shape_fn(m, |a| columns[a].iter().zip(&flat).map(|(p, q)| p * q).sum());
            let (logdet, z) = cholesky_solve(&gram, rhs.view());
            // The sample lies in the span: its coordinates reproduce it.
            let residual = (0..flat.len())
                .map(|p| (flat[p] - (0..m).map(|a| columns[a][p] * z[a]).sum::<f64>()).abs())
                .fold(0.0, f64::max);
            assert!(residual < 1e-10 * flat.iter().fold(0.0_f64, |a, v| a.max(v.abs())));
            let want = -0.5 * z.iter().map(|z| z * z).sum::<f64>() - 0.5 * logdet - 0.5 * m as f64 * (2.0 * PI).ln();
            assert!((got[b] - want).abs() <= 1e-9 * want.abs(), "{} vs dense {want}", got[b]);
        }
        // A gradient field (the divergent part) does not change the density.
        let phi = grid.field_from_fn(|x, y| (2.0 * PI * x / grid.lx()).sin() * (2.0 * PI * y / grid.ly()).cos());
        let grad = gradient(&grid, phi.view()).unwrap();
        let mut shifted = x.clone();
        shifted.axis_iter_mut(Axis(0)).for_each(|mut s| s += &grad);
        let again = sampler.log_density(shifted.view()).unwrap();
        assert!(again.iter().zip(&got).all(|(a, b)| (a - b).abs() <= 1e-10 * b.abs()));
    }

    #[test]
    fn empirical_mode_variances_are_within_three_standard_errors() {
        let grid = Grid2d::square(16, 1.0).unwrap();
        let cov = fno(2.5, 7.0, 7f64.powf(1.5), true);
        let measure = SourceMeasure::GaussianProcess(cov);
        let sampler = measure.sampler(&grid, 2).unwrap();
        let v = cov.mode_variances(&grid).unwrap();
        let samples = 2000;
        let x = sampler.sample_array(21, 0..samples).unwrap();
        let n2 = (grid.nx() * grid.ny()) as f64;
        let spectra: Vec<[Array2<Complex64>; 2]> = x
            .axis_iter(Axis(0))
            .map(|s| [grid.fft(s.slice(s![0, .., ..])).unwrap(), grid.fft(s.slice(s![1, .., ..])).unwrap()])
            .collect();
        // (row, column) cells; (8, 0) and (0, 8) are real (self-conjugate) modes.
        for (r, j) in [(1, 0), (0, 1), (3, 2), (14, 3), (8, 0), (0, 8), (5, 5)] {
            let real = (j == 0 || j == 8) && (r == 0 || r == 8);
            let se = if real { (2.0 / samples as f64).sqrt() } else { (1.0 / samples as f64).sqrt() };
            for c in 0..2 {
                let ratio = spectra.iter().map(|s| s[c][[r, j]].norm_sqr() / (n2 * n2 * v[[r, j]])).sum::<f64>()
                    / samples as f64;
                assert!((ratio - 1.0).abs() < 3.0 * se, "mode ({r}, {j}) channel {c}: {ratio} (se {se})");
            }
            // Channels are independent: the normalised cross term has mean 0, variance ½ (complex)
            // or 1 (real).
            let cross = spectra.iter().map(|s| (s[0][[r, j]] * s[1][[r, j]].conj()).re / (n2 * n2 * v[[r, j]]));
            let cross = cross.sum::<f64>() / samples as f64;
            let se = if real { (1.0 / samples as f64).sqrt() } else { (0.5 / samples as f64).sqrt() };
            assert!(cross.abs() < 3.0 * se, "mode ({r}, {j}) cross-channel {cross} (se {se})");
        }
        // White noise: unit variance per value.
        let w = SourceMeasure::White.sample_array(&grid, 2, 21, 0..50).unwrap();
        let var = w.mapv(|v| v * v).mean().unwrap();
        let se = (2.0 / w.len() as f64).sqrt();
        assert!((var - 1.0).abs() < 3.0 * se, "white variance {var}");
    }

    #[test]
    fn samples_are_reproducible_per_seed_index_and_channel() {
        let grid = Grid2d::square(8, 1.0).unwrap();
        let gp = SourceMeasure::GaussianProcess(Covariance::default());
        for measure in [SourceMeasure::White, gp.clone()] {
            let batch = measure.sample_array(&grid, 3, 9, 4..8).unwrap();
            let single = measure.sample_array(&grid, 3, 9, 6..7).unwrap();
            assert_eq!(batch.index_axis(Axis(0), 2), single.index_axis(Axis(0), 0));
            // Channel c does not depend on how many channels are drawn.
            let one = measure.sample_array(&grid, 1, 9, 4..8).unwrap();
            assert_eq!(one.index_axis(Axis(1), 0), batch.index_axis(Axis(1), 0));
            assert_ne!(batch.index_axis(Axis(1), 0), batch.index_axis(Axis(1), 1));
            assert_ne!(batch, measure.sample_array(&grid, 3, 10, 4..8).unwrap());
        }
        // A GP channel is the pde sampler's draw under the channel's seed, whose stream is the
        // sample's substream for that channel.
        let grf = GrfSampler::new(&grid, &Covariance::default()).unwrap();
        let batch = gp.sample_array(&grid, 3, 9, 4..8).unwrap();
        assert_eq!(batch.slice(s![1, 2, .., ..]), grf.sample(channel_seed(9, 2), 5).unwrap());
        let words = |mut r: SampleRng| (0..8).map(|_| r.random::<u64>()).collect::<Vec<_>>();
        assert_eq!(words(stream(channel_seed(9, 2), 5)), words(substream(9, 5, 2)));
        assert_eq!(channel_seed(9, 0), 9);
        let device = Device::default();
        let t = gp.sample(&grid, 3, 9, 4..8, &device).unwrap();
        let back = crate::bridge::to_array(t).unwrap().into_dimensionality::<Ix4>().unwrap();
        assert_eq!(back, batch.mapv(|v| f64::from(v as f32)));
    }

    #[test]
    fn mode_statistics_are_resolution_consistent() {
        let cov = fno(2.5, 7.0, 7f64.powf(1.5), true);
        let (coarse, fine) = (Grid2d::square(32, 1.0).unwrap(), Grid2d::square(64, 1.0).unwrap());
        let (vc, vf) = (cov.mode_variances(&coarse).unwrap(), cov.mode_variances(&fine).unwrap());
        let measure = SourceMeasure::GaussianProcess(cov);
        let (xc, xf) =
            (measure.sample_array(&coarse, 2, 4, 0..2).unwrap(), measure.sample_array(&fine, 2, 4, 0..2).unwrap());
        for my in -15isize..=15 {
            for mx in 0..16usize {
                let (rc, rf) = (my.rem_euclid(32) as usize, my.rem_euclid(64) as usize);
                assert!((vc[[rc, mx]] - vf[[rf, mx]]).abs() <= 1e-14 * vf[[rf, mx]], "({mx}, {my})");
                // The same coefficient b_k = f̂(k)/N in both resolutions, in every channel.
                for (b, c) in [(0, 0), (1, 1)] {
                    let bc = coarse.fft(xc.slice(s![b, c, .., ..])).unwrap()[[rc, mx]] / 1024.0;
                    let bf = fine.fft(xf.slice(s![b, c, .., ..])).unwrap()[[rf, mx]] / 4096.0;
                    assert!((bc - bf).norm() <= 1e-10 * bf.norm().max(1e-3), "({mx}, {my}): {bc} vs {bf}");
                }
            }
        }
    }

    #[test]
    fn divergence_free_samples_are_solenoidal() {
        let grid = Grid2d::new(32, 24, 2.0, 1.5).unwrap();
        let measure = SourceMeasure::DivergenceFreeGp(Covariance::default());
        let x = measure.sample_array(&grid, 2, 8, 0..3).unwrap();
        for sample in x.axis_iter(Axis(0)) {
            let div = divergence(&grid, sample).unwrap();
            let w = vorticity(&grid, sample).unwrap();
            let scale = w.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(scale > 0.0);
            assert!(div.iter().all(|d| d.abs() <= 1e-12 * scale), "max |div| vs max |ω| = {scale}");
        }
        let t = measure.sample(&grid, 2, 8, 0..3, &Device::default()).unwrap();
        let back = crate::bridge::to_array(t).unwrap().into_dimensionality::<Ix4>().unwrap();
        assert_eq!(back, x.mapv(|v| f64::from(v as f32)));
    }

    #[test]
    fn bad_channels_shapes_and_indices_are_errors() {
        let grid = Grid2d::square(8, 1.0).unwrap();
        let div_free = SourceMeasure::DivergenceFreeGp(Covariance::default());
        for c in [1, 3] {
            let err = div_free.sampler(&grid, c).unwrap_err();
            assert!(matches!(err, NoiseError::Channels { channels, .. } if channels == c), "{err}");
        }
        assert!(matches!(SourceMeasure::White.sampler(&grid, 0), Err(NoiseError::Channels { .. })));
        let bad = SourceMeasure::GaussianProcess(fno(-1.0, 7.0, 1.0, true));
        let err = bad.sampler(&grid, 1).unwrap_err();
        assert!(err.to_string().contains("alpha"), "{err}");
        let x = Array4::<f64>::zeros((2, 1, 8, 6));
        let err = SourceMeasure::White.log_density(&grid, x.view()).unwrap_err();
        assert!(matches!(err, NoiseError::Shape { what: "x", .. }), "{err}");
        #[allow(clippy::reversed_empty_ranges)]
        let err = SourceMeasure::White.sample_array(&grid, 1, 0, 5..2).unwrap_err();
        assert!(matches!(err, NoiseError::Indices { start: 5, end: 2, .. }), "{err}");
    }
}
