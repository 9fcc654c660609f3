//! Covariance operators of the random fields, reduced to the variance `v(k)` of each Fourier
//! coefficient (see the [module documentation](super) for the conventions).

use ndarray::Array2;

use crate::error::{PdeError, Result};
use crate::grid::Grid2d;

/// Parameters of FNO's Gaussian random field `N(0, σ² (−Δ + τ²)^(−α))`.
///
/// The default is the initial condition of FNO's Navier–Stokes data: `α = 2.5`, `τ = 7`,
/// `σ = τ^(α − 1) = 7^1.5`, zero mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrfParams {
    /// Smoothness `α > 0`: the spectrum decays as `|k|^(−2α)` for `|k| ≫ τ`.
    pub alpha: f64,
    /// Inverse length scale `τ ≥ 0` (the spectrum is flat for `|k| ≪ τ`).
    pub tau: f64,
    /// Amplitude `σ ≥ 0`; `None` takes FNO's default `τ^(α − d/2) = τ^(α − 1)` (then `τ > 0`).
    pub sigma: Option<f64>,
    /// Whether the mean (`k = 0`) mode is zero, as in FNO. If `false` it has variance
    /// `σ² τ^(−2α) / |D|` (then `τ > 0`).
    pub mean_zero: bool,
}

impl Default for GrfParams {
    fn default() -> Self {
        Self { alpha: 2.5, tau: 7.0, sigma: None, mean_zero: true }
    }
}

impl GrfParams {
    /// The amplitude `σ`, with FNO's default `τ^(α − 1)` when [`GrfParams::sigma`] is `None`.
    pub fn sigma(&self) -> f64 {
        self.sigma.unwrap_or_else(|| self.tau.powf(self.alpha - 1.0))
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `alpha` (not finite and positive), `tau` (negative, not
    /// finite, or zero where a default `sigma` or a kept mean needs it positive) or `sigma` (not
    /// finite and non-negative).
    pub fn validate(&self) -> Result<()> {
        positive("alpha", self.alpha)?;
        non_negative("tau", self.tau)?;
        match self.sigma {
            Some(s) => non_negative("sigma", s)?,
            None if self.tau == 0.0 => {
                return Err(PdeError::Parameter {
                    name: "tau",
                    value: self.tau,
                    reason: "must be positive when sigma is not given (FNO's default sigma = tau^(alpha - 1))",
                });
            }
            None => {}
        }
        if !self.mean_zero && self.tau == 0.0 {
            return Err(PdeError::Parameter {
                name: "tau",
                value: self.tau,
                reason: "must be positive when the mean mode is kept (its variance is sigma^2 tau^(-2 alpha))",
            });
        }
        Ok(())
    }
}

/// How a Matérn field is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaternNormalisation {
    /// Scale the spectrum so that the pointwise variance of the *grid* field is exactly `σ²`
    /// (the per-mode variances then depend weakly on the grid, through the modes it resolves).
    #[default]
    Grid,
    /// Use the whole-plane Matérn spectral density, `v(k) = S(k) / |D|`: per-mode variances
    /// independent of the grid; the pointwise variance tends to `σ²` as the grid resolves `ℓ`
    /// and the domain is large compared with `ℓ`.
    Continuum,
}

/// Parameters of a Matérn field: covariance `σ² 2^(1−ν)/Γ(ν) (√(2ν) r/ℓ)^ν K_ν(√(2ν) r/ℓ)`, with
/// spectral density `S(k) = σ² 2π ℓ² (1 + ℓ²|k|²/(2ν))^(−(ν + 1))` in two dimensions.
///
/// The default (`σ² = 1`, `ℓ = 0.1`, `ν = 1.5`, zero mean, grid normalisation) suits the unit
/// square.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaternParams {
    /// Pointwise variance `σ² ≥ 0`.
    pub variance: f64,
    /// Length scale `ℓ > 0`.
    pub length_scale: f64,
    /// Smoothness `ν > 0`: the spectrum decays as `|k|^(−2(ν + 1))`.
    pub nu: f64,
    /// Whether the mean (`k = 0`) mode is zero. With [`MaternNormalisation::Grid`] the variance
    /// `σ²` is shared among the modes that are kept.
    pub mean_zero: bool,
    /// How the spectrum is scaled.
    pub normalisation: MaternNormalisation,
}

impl Default for MaternParams {
    fn default() -> Self {
        Self { variance: 1.0, length_scale: 0.1, nu: 1.5, mean_zero: true, normalisation: MaternNormalisation::Grid }
    }
}

impl MaternParams {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `variance` (not finite and non-negative), `length_scale`
    /// or `nu` (not finite and positive).
    pub fn validate(&self) -> Result<()> {
        non_negative("variance", self.variance)?;
        positive("length_scale", self.length_scale)?;
        positive("nu", self.nu)
    }
}

/// The covariance of a stationary Gaussian random field on a periodic grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Covariance {
    /// FNO's `σ² (−Δ + τ²)^(−α)`.
    Fno(GrfParams),
    /// The Matérn family.
    Matern(MaternParams),
}

impl Default for Covariance {
    fn default() -> Self {
        Self::Fno(GrfParams::default())
    }
}

impl From<GrfParams> for Covariance {
    fn from(p: GrfParams) -> Self {
        Self::Fno(p)
    }
}

impl From<MaternParams> for Covariance {
    fn from(p: MaternParams) -> Self {
        Self::Matern(p)
    }
}

impl Covariance {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming the offending parameter.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Fno(p) => p.validate(),
            Self::Matern(p) => p.validate(),
        }
    }

    /// The variance `v(k) = E|b_k|²` of the Fourier coefficient of every stored half-plane mode,
    /// in spectral layout (`(ny, nx/2 + 1)`, as [`Grid2d::spectral_zeros`]). The sampled DFT has
    /// `E|f̂(k)|² = (nx ny)² v(k)`.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] if the parameters are invalid.
    pub fn mode_variances(&self, grid: &Grid2d) -> Result<Array2<f64>> {
        self.validate()?;
        let area = grid.lx() * grid.ly();
        let mut v = match *self {
            Self::Fno(p) => {
                let s2 = p.sigma().powi(2) / area;
                let mut v = grid.spectral_map(|kx, ky| s2 * (kx * kx + ky * ky + p.tau * p.tau).powf(-p.alpha));
                if p.mean_zero {
                    v[[0, 0]] = 0.0;
                }
                v
            }
            Self::Matern(p) => matern(grid, &p),
        };
        // Guards against `0 · ∞` and the like; valid parameters never produce these.
        v.mapv_inplace(|x| if x.is_finite() { x } else { 0.0 });
        Ok(v)
    }
}

/// Matérn mode variances; `ln w(k) = −(ν + 1) ln(1 + ℓ²|k|²/(2ν))` is computed in logs so that
/// the grid normalisation survives extreme parameters.
fn matern(grid: &Grid2d, p: &MaternParams) -> Array2<f64> {
    let c = p.length_scale * p.length_scale / (2.0 * p.nu);
    let mut log_w = grid.spectral_map(|kx, ky| -(p.nu + 1.0) * (c * (kx * kx + ky * ky)).ln_1p());
    if p.mean_zero {
        log_w[[0, 0]] = f64::NEG_INFINITY;
    }
    match p.normalisation {
        MaternNormalisation::Continuum => {
            let scale =
                p.variance * 2.0 * std::f64::consts::PI * p.length_scale * p.length_scale / (grid.lx() * grid.ly());
            log_w.mapv(|lw| scale * lw.exp())
        }
        MaternNormalisation::Grid => {
            let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let w = log_w.mapv(|lw| (lw - max).exp());
            let total = full_plane_sum(grid, &w);
            if total > 0.0 { w.mapv(|x| p.variance * x / total) } else { Array2::zeros(w.raw_dim()) }
        }
    }
}

/// `Σ_k a(k)` over all `nx × ny` modes of the grid, from a half-plane array: the columns
/// `0 < kx < nx/2` stand for two modes each (`k` and `−k`).
pub(crate) fn full_plane_sum(grid: &Grid2d, a: &Array2<f64>) -> f64 {
    let nyq = grid.nx() / 2;
    a.indexed_iter().map(|((_, j), &x)| if j == 0 || j == nyq { x } else { 2.0 * x }).sum()
}

fn positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(PdeError::Parameter { name, value, reason: "must be finite and positive" })
    }
}

pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(PdeError::Parameter { name, value, reason: "must be finite and non-negative" })
    }
}
