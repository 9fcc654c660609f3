//! Differentiable PDE residuals on burn tensors, and the PBFM residual loss (Baldan et al. 2025,
//! "Physics-Based Flow Matching", code tum-pbs/PBFM).
//!
//! Each residual is the f32 tensor twin of an f64 reference in `fieldflow-pde` and is built from
//! ops burn differentiates (matrix products, slices, sums), so `∂ loss / ∂ x` flows back to the
//! network that produced `x`.
//!
//! # Spectral divergence ([`SpectralDivergence`])
//!
//! On a periodic `ny × nx` grid of size `Ly × Lx`, `∂x f = F⁻¹ diag(i k_x) F f` along x, with the
//! derivative wavenumbers `k_x(m) = 2π m̃ / Lx` (`m̃` the signed index of mode `m`, the Nyquist
//! mode `m = nx/2` set to zero for even `nx`), exactly as `fieldflow_pde::operators::divergence`.
//! Because `k_x` is odd in `m̃`, the product of the full DFT matrices collapses to a real
//! circulant matrix
//!
//! ```text
//! D_x[j, l] = Re (1/n) Σ_m i k_x(m) e^{2πi m (j − l)/n} = −(1/n) Σ_m k_x(m) sin(2π m (j − l)/n)
//! ```
//!
//! (assembled in f64, stored in f32), and `∇·u = u D_xᵀ + D_y v` is two matrix products per
//! sample: `O(B (H W² + W H²))` work, intended for `H, W ≤ 128`. The operator is linear, so its
//! adjoint is `(D_xᵀ, D_yᵀ)` (the tests check the autodiff gradient against it).
//!
//! # Darcy residual ([`DarcyResidual`])
//!
//! For a pair `x = (a, u)` on `s × s` nodes of the unit square (`h = 1/(s − 1)`), at the interior
//! nodes `P` with neighbours `Q ∈ {E, W, N, S}`
//!
//! ```text
//! R_P = Σ_Q a_PQ (u_P − u_Q) / h² − f_P,     a_PQ = (a_P + a_Q)/2  (or 2 a_P a_Q/(a_P + a_Q))
//! ```
//!
//! and `R = 0` on the boundary nodes: the tensor form of `fieldflow_pde::darcy::DarcyOperator::
//! residual`, written with four shifted slices of the interior (the 5-point stencil).
//!
//! # Navier–Stokes vorticity residual ([`VorticityResidual`])
//!
//! For snapshots `ω⁰, ω¹` a time `Δt` apart on a periodic grid, the trapezoidal residual
//! `r = (ω¹ − ω⁰)/Δt − ½[R(ω⁰) + R(ω¹)]`, `R(ω) = −D(u·∇ω) + νΔω − αω + f`, with
//! `u = (∂ψ/∂y, −∂ψ/∂x)`, `ψ = Δ⁻¹(−ω)` (zero mean) and `D` the 2/3-rule dealiasing filter, as
//! `fieldflow_pde::residuals::VorticityRhs::residual`. The separable multipliers (`∂x`, `∂y`,
//! `∂xx + ∂yy`, `D`) are real circulant matrices as above; `Δ⁻¹` is not separable and uses the
//! cosine/sine transform matrices (four products per side, see [`VorticityResidual`]).
//!
//! # PBFM residual loss ([`pbfm_residual_loss`])
//!
//! With the network's velocity `v = v_θ(x_t, t)` the one-step prediction of the final sample is
//! `x̂₁ = x_t + (1 − t) v` (exact for the CondOT path with `σ_min = 0` when `v` is the conditional
//! velocity), and
//!
//! ```text
//! L_R = (1/B) Σ_b t_b^p · mean(R(x̂₁,b)²)
//! ```
//!
//! The weight `t^p` damps the residual of the (poor) predictions made from nearly pure noise;
//! `p = 0` gives the unweighted mean. The reference code (tum-pbs/PBFM, `*/flow_matching.py`,
//! `cfm_loss_residual`) uses `p = 1` with `σ_min = 0`, computes the residual on de-normalised
//! (physical) fields, takes `R²` for the Kolmogorov divergence but `|R|` for Darcy
//! ([`ResidualNorm`] selects either, see [`pbfm_residual_loss_with`]), and optionally unrolls
//! `n` Euler steps from `t` to 1 to predict `x̂₁` (only the one-step prediction is implemented
//! here). The caller must undo any data normalisation inside `residual_fn`.
//!
//! Length: 564 lines of code, 311 of tests; kept together as one subject (the three differentiable PDE residuals of PBFM).

use burn::tensor::{Device, Tensor, TensorData};
use fieldflow_pde::darcy::FaceAverage;
use thiserror::Error;

/// What can go wrong building or applying a residual.
#[derive(Debug, Error, PartialEq)]
pub enum ResidualError {
    /// A grid parameter is out of range.
    #[error("invalid residual parameter `{name}`: {reason}")]
    Parameter {
        /// The offending parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An input tensor has the wrong shape.
    #[error("shape mismatch for `{what}`: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// The expected shape (0 = any size).
        expected: Vec<usize>,
        /// The shape that was passed.
        got: Vec<usize>,
    },
}

fn shape_error(what: &'static str, expected: Vec<usize>, got: &[usize]) -> ResidualError {
    ResidualError::Shape { what, expected, got: got.to_vec() }
}

/// `2π m̃ / l` for mode `m` of `n` (`m̃` the signed index; the Nyquist mode counts as `−n/2`).
fn wavenumber(m: usize, n: usize, l: f64) -> f64 {
    let signed = if 2 * m < n { m as f64 } else { m as f64 - n as f64 };
    2.0 * std::f64::consts::PI * signed / l
}

/// The derivative wavenumber: [`wavenumber`] with the Nyquist mode zeroed.
fn deriv_wavenumber(m: usize, n: usize, l: f64) -> f64 {
    if 2 * m == n { 0.0 } else { wavenumber(m, n, l) }
}

/// The row-major `n × n` real circulant matrix `D[j, l] = c[(j − l) mod n]` of the Fourier
/// multiplier `i k(m)` (`k` odd in `m`: `odd = true`) or `k(m)` (`k` even: `odd = false`).
fn circulant(n: usize, odd: bool, k: impl Fn(usize) -> f64) -> Vec<f64> {
    let col: Vec<f64> = (0..n)
        .map(|d| {
            let sum: f64 = (0..n)
                .map(|m| {
                    let theta = 2.0 * std::f64::consts::PI * (m * d % n) as f64 / n as f64;
                    if odd { -k(m) * theta.sin() } else { k(m) * theta.cos() }
                })
                .sum();
            sum / n as f64
        })
        .collect();
    let mut out = vec![0.0; n * n];
    for j in 0..n {
        for c in 0..n {
            out[j * n + c] = col[(j + n - c) % n];
        }
    }
    out
}

/// The real `n × n` spectral first-derivative matrix on a periodic interval of length `l`
/// (Nyquist mode zeroed), row-major: `(D f)_j = Σ_l D[j, l] f_l`.
fn derivative_matrix(n: usize, l: f64) -> Vec<f64> {
    circulant(n, true, |m| deriv_wavenumber(m, n, l))
}

/// Row-major transpose of an `n × n` matrix.
fn transpose(d: &[f64], n: usize) -> Vec<f64> {
    (0..n * n).map(|i| d[(i % n) * n + i / n]).collect()
}

/// `f ↦ A f` along x (the last axis) for a batch `[B, H, W]`, given `Aᵀ` (`[W, W]`).
fn apply_x(a_t: &Tensor<2>, f: Tensor<3>) -> Tensor<3> {
    let [b, h, w] = f.dims();
    f.reshape([b * h, w]).matmul(a_t.clone()).reshape([b, h, w])
}

/// `f ↦ A f` along y (the middle axis) for a batch `[B, H, W]`, given `Aᵀ` (`[H, H]`).
fn apply_y(a_t: &Tensor<2>, f: Tensor<3>) -> Tensor<3> {
    let [b, h, w] = f.dims();
    f.swap_dims(1, 2).reshape([b * w, h]).matmul(a_t.clone()).reshape([b, w, h]).swap_dims(1, 2)
}

fn matrix_tensor(values: &[f64], n: usize, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [n, n]), device)
}

/// The spectral divergence `∇·u = ∂u/∂x + ∂v/∂y` of velocity batches on a periodic grid, as
/// dense derivative matrices (see the module docs).
#[derive(Debug, Clone)]
pub struct SpectralDivergence {
    /// `D_xᵀ`, `[nx, nx]`.
    dx_t: Tensor<2>,
    /// `D_yᵀ`, `[ny, ny]`.
    dy_t: Tensor<2>,
    ny: usize,
    nx: usize,
}

impl SpectralDivergence {
    /// The operator on an `ny × nx` grid of size `ly × lx` (as `Grid2d::new(nx, ny, lx, ly)`).
    ///
    /// # Errors
    /// [`ResidualError::Parameter`] if a size is 0 or above 512, or a length is not positive and
    /// finite.
    pub fn new(ny: usize, nx: usize, ly: f64, lx: f64, device: &Device) -> Result<Self, ResidualError> {
        for (name, n) in [("ny", ny), ("nx", nx)] {
            if n == 0 || n > 512 {
                return Err(ResidualError::Parameter {
                    name,
                    reason: format!("must be in 1..=512 (dense matrices), got {n}"),
                });
            }
        }
        for (name, l) in [("ly", ly), ("lx", lx)] {
            if !(l.is_finite() && l > 0.0) {
                return Err(ResidualError::Parameter { name, reason: format!("must be positive and finite, got {l}") });
            }
        }
        let dx = derivative_matrix(nx, lx);
        let dy = derivative_matrix(ny, ly);
        Ok(Self {
            dx_t: matrix_tensor(&transpose(&dx, nx), nx, device),
            dy_t: matrix_tensor(&transpose(&dy, ny), ny, device),
            ny,
            nx,
        })
    }

    /// The operator on the grid of `grid`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_grid(grid: &fieldflow_pde::Grid2d, device: &Device) -> Result<Self, ResidualError> {
        Self::new(grid.ny(), grid.nx(), grid.ly(), grid.lx(), device)
    }

    /// The divergence of a velocity batch.
    ///
    /// # Shapes
    /// `uv`: `[B, 2, ny, nx]` (channels `(u, v)`) → `[B, 1, ny, nx]`.
    ///
    /// # Errors
    /// [`ResidualError::Shape`] if `uv` is not `[B, 2, ny, nx]`.
    pub fn forward(&self, uv: Tensor<4>) -> Result<Tensor<4>, ResidualError> {
        let dims = uv.dims();
        if dims[1] != 2 || dims[2] != self.ny || dims[3] != self.nx {
            return Err(shape_error("velocity", vec![0, 2, self.ny, self.nx], &dims));
        }
        let b = dims[0];
        let u = uv.clone().narrow(1, 0, 1).reshape([b, self.ny, self.nx]);
        let v = uv.narrow(1, 1, 1).reshape([b, self.ny, self.nx]);
        Ok((apply_x(&self.dx_t, u) + apply_y(&self.dy_t, v)).unsqueeze_dim(1))
    }
}

/// The Darcy residual `A(a) u − f` of `(a, u)` pair batches (see the module docs).
#[derive(Debug, Clone)]
pub struct DarcyResidual {
    s: usize,
    face_average: FaceAverage,
    /// The forcing on the interior nodes, `[1, s − 2, s − 2]`.
    f_interior: Tensor<3>,
}

impl DarcyResidual {
    /// The residual on `s × s` nodes with forcing `f` (`[s, s]`, boundary values unused).
    ///
    /// # Errors
    /// [`ResidualError::Parameter`] if `s < 3`; [`ResidualError::Shape`] if `f` is not `[s, s]`.
    pub fn new(s: usize, face_average: FaceAverage, f: Tensor<2>) -> Result<Self, ResidualError> {
        if s < 3 {
            return Err(ResidualError::Parameter {
                name: "s",
                reason: format!("needs at least 3 nodes per side, got {s}"),
            });
        }
        let dims = f.dims();
        if dims != [s, s] {
            return Err(shape_error("forcing", vec![s, s], &dims));
        }
        let f_interior = f.narrow(0, 1, s - 2).narrow(1, 1, s - 2).unsqueeze_dim(0);
        Ok(Self { s, face_average, f_interior })
    }

    /// The residual with a constant forcing `f ≡ value` (the FNO benchmark uses 1).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn constant_forcing(
        s: usize,
        face_average: FaceAverage,
        value: f64,
        device: &Device,
    ) -> Result<Self, ResidualError> {
        if s < 3 {
            return Err(ResidualError::Parameter {
                name: "s",
                reason: format!("needs at least 3 nodes per side, got {s}"),
            });
        }
        Self::new(s, face_average, Tensor::<2>::full([s, s], value as f32, device))
    }

    fn face(&self, p: Tensor<3>, q: Tensor<3>) -> Tensor<3> {
        match self.face_average {
            FaceAverage::Arithmetic => (p + q).mul_scalar(0.5),
            FaceAverage::Harmonic => (p.clone() * q.clone()).mul_scalar(2.0) / (p + q),
        }
    }

    /// The residual of a pair batch.
    ///
    /// # Shapes
    /// `x`: `[B, 2, s, s]` (channel 0 = `a`, channel 1 = `u`) → `[B, 1, s, s]`, 0 on the boundary.
    ///
    /// # Errors
    /// [`ResidualError::Shape`] if `x` is not `[B, 2, s, s]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ResidualError> {
        let s = self.s;
        let dims = x.dims();
        if dims[1] != 2 || dims[2] != s || dims[3] != s {
            return Err(shape_error("Darcy pair", vec![0, 2, s, s], &dims));
        }
        let b = dims[0];
        let m = s - 2;
        let a = x.clone().narrow(1, 0, 1).reshape([b, s, s]);
        let u = x.narrow(1, 1, 1).reshape([b, s, s]);
        // The interior block shifted by (dy, dx) ∈ {−1, 0, 1}².
        let shift = |t: &Tensor<3>, dy: usize, dx: usize| t.clone().narrow(1, dy, m).narrow(2, dx, m);
        let (ap, up) = (shift(&a, 1, 1), shift(&u, 1, 1));
        let inv_h2 = ((s - 1) * (s - 1)) as f64;
        let mut acc: Option<Tensor<3>> = None;
        for (dy, dx) in [(1, 2), (1, 0), (2, 1), (0, 1)] {
            let term = self.face(ap.clone(), shift(&a, dy, dx)) * (up.clone() - shift(&u, dy, dx));
            acc = Some(match acc {
                Some(t) => t + term,
                None => term,
            });
        }
        let interior = match acc {
            Some(t) => t.mul_scalar(inv_h2) - self.f_interior.clone(),
            None => return Err(shape_error("Darcy pair", vec![0, 2, s, s], &dims)),
        };
        let device = interior.device();
        let col = Tensor::<3>::zeros([b, m, 1], &device);
        let rows = Tensor::cat(vec![col.clone(), interior, col], 2);
        let row = Tensor::<3>::zeros([b, 1, s], &device);
        Ok(Tensor::cat(vec![row.clone(), rows, row], 1).unsqueeze_dim(1))
    }
}

/// The trapezoidal residual of the 2-D Navier–Stokes vorticity equation between two snapshots
/// (see the module docs), the tensor twin of `fieldflow_pde::residuals::VorticityRhs::residual`.
#[derive(Debug, Clone)]
pub struct VorticityResidual {
    ny: usize,
    nx: usize,
    viscosity: f64,
    drag: f64,
    dt: f64,
    /// Transposed first-derivative matrices (Nyquist zeroed).
    dx_t: Tensor<2>,
    dy_t: Tensor<2>,
    /// Transposed second-derivative matrices (multiplier `−k²`, full wavenumbers).
    lxx_t: Tensor<2>,
    lyy_t: Tensor<2>,
    /// Transposed 2/3-rule filters along x and y.
    dealias_x_t: Tensor<2>,
    dealias_y_t: Tensor<2>,
    /// Cosine and sine transform matrices `cos(2π m i / n)`, `sin(2π m i / n)` (symmetric).
    cos_y: Tensor<2>,
    sin_y: Tensor<2>,
    cos_x: Tensor<2>,
    sin_x: Tensor<2>,
    /// `1/(|k|² H W)` (0 at `k = 0`), `[1, H, W]`.
    inv_k2: Tensor<3>,
    /// The forcing, `[1, H, W]`.
    forcing: Tensor<3>,
}

impl VorticityResidual {
    /// The residual on `grid` with viscosity `ν`, linear drag `α`, forcing `f` (`[ny, nx]`) and
    /// snapshot spacing `dt`.
    ///
    /// # Errors
    /// [`ResidualError::Parameter`] for a grid above 512 points per side, a negative or
    /// non-finite `viscosity`/`drag`, a non-positive `dt`; [`ResidualError::Shape`] if `forcing`
    /// is not `[ny, nx]`.
    pub fn new(
        grid: &fieldflow_pde::Grid2d,
        viscosity: f64,
        drag: f64,
        forcing: Tensor<2>,
        dt: f64,
    ) -> Result<Self, ResidualError> {
        let (ny, nx, ly, lx) = (grid.ny(), grid.nx(), grid.ly(), grid.lx());
        for (name, n) in [("ny", ny), ("nx", nx)] {
            if n > 512 {
                return Err(ResidualError::Parameter {
                    name,
                    reason: format!("must be at most 512 (dense matrices), got {n}"),
                });
            }
        }
        for (name, v) in [("viscosity", viscosity), ("drag", drag)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ResidualError::Parameter {
                    name,
                    reason: format!("must be finite and non-negative, got {v}"),
                });
            }
        }
        if !(dt.is_finite() && dt > 0.0) {
            return Err(ResidualError::Parameter {
                name: "dt",
                reason: format!("must be finite and positive, got {dt}"),
            });
        }
        if forcing.dims() != [ny, nx] {
            return Err(shape_error("forcing", vec![ny, nx], &forcing.dims()));
        }
        let device = forcing.device();
        let mat = |d: Vec<f64>, n: usize| matrix_tensor(&transpose(&d, n), n, &device);
        let keep = |m: usize, n: usize| {
            let signed = if 2 * m < n { m } else { n - m };
            if 3 * signed < n { 1.0 } else { 0.0 }
        };
        let trig = |n: usize, f: fn(f64) -> f64| {
            let v: Vec<f64> =
                (0..n * n).map(|i| f(2.0 * std::f64::consts::PI * ((i / n) * (i % n) % n) as f64 / n as f64)).collect();
            matrix_tensor(&v, n, &device)
        };
        let scale = 1.0 / (nx * ny) as f64;
        let inv_k2: Vec<f32> = (0..ny * nx)
            .map(|i| {
                let (ky, kx) = (wavenumber(i / nx, ny, ly), wavenumber(i % nx, nx, lx));
                let k2 = kx * kx + ky * ky;
                if k2 > 0.0 { (scale / k2) as f32 } else { 0.0 }
            })
            .collect();
        Ok(Self {
            ny,
            nx,
            viscosity,
            drag,
            dt,
            dx_t: mat(derivative_matrix(nx, lx), nx),
            dy_t: mat(derivative_matrix(ny, ly), ny),
            lxx_t: mat(circulant(nx, false, |m| -wavenumber(m, nx, lx).powi(2)), nx),
            lyy_t: mat(circulant(ny, false, |m| -wavenumber(m, ny, ly).powi(2)), ny),
            dealias_x_t: mat(circulant(nx, false, |m| keep(m, nx)), nx),
            dealias_y_t: mat(circulant(ny, false, |m| keep(m, ny)), ny),
            cos_y: trig(ny, f64::cos),
            sin_y: trig(ny, f64::sin),
            cos_x: trig(nx, f64::cos),
            sin_x: trig(nx, f64::sin),
            inv_k2: Tensor::from_data(TensorData::new(inv_k2, [1, ny, nx]), &device),
            forcing: forcing.unsqueeze_dim(0),
        })
    }

    /// The streamfunction `ψ = Δ⁻¹(−ω)` (zero mean). The multiplier `1/|k|²` is even in `kx` and
    /// in `ky`, so `F⁻¹ M F` is the sum over `(P, Q) ∈ {cos, sin}²` of `P_y (M ∘ P_y ω Q_x) Q_x`.
    fn streamfunction(&self, w: Tensor<3>) -> Tensor<3> {
        let mut acc: Option<Tensor<3>> = None;
        for p in [&self.cos_y, &self.sin_y] {
            let pw = apply_y(p, w.clone());
            for q in [&self.cos_x, &self.sin_x] {
                let spec = apply_x(q, pw.clone()) * self.inv_k2.clone();
                let term = apply_x(q, apply_y(p, spec));
                acc = Some(match acc {
                    Some(a) => a + term,
                    None => term,
                });
            }
        }
        acc.unwrap_or(w)
    }

    /// `R(ω) = −u·∇ω + νΔω − αω + f` with the advection 2/3-rule dealiased.
    ///
    /// # Shapes
    /// `w`: `[B, ny, nx]` → `[B, ny, nx]`.
    fn rhs(&self, w: Tensor<3>) -> Tensor<3> {
        let psi = self.streamfunction(w.clone());
        let u = apply_y(&self.dy_t, psi.clone());
        let v = apply_x(&self.dx_t, psi).neg();
        let wx = apply_x(&self.dx_t, w.clone());
        let wy = apply_y(&self.dy_t, w.clone());
        let advection = apply_y(&self.dealias_y_t, apply_x(&self.dealias_x_t, u * wx + v * wy));
        let laplacian = apply_x(&self.lxx_t, w.clone()) + apply_y(&self.lyy_t, w.clone());
        advection.neg() + laplacian.mul_scalar(self.viscosity) - w.mul_scalar(self.drag) + self.forcing.clone()
    }

    /// The residual `(ω¹ − ω⁰)/Δt − ½[R(ω⁰) + R(ω¹)]` of snapshot pairs.
    ///
    /// # Shapes
    /// `x`: `[B, 2, ny, nx]` (channel 0 = `ω⁰`, channel 1 = `ω¹`) → `[B, 1, ny, nx]`.
    ///
    /// # Errors
    /// [`ResidualError::Shape`] if `x` is not `[B, 2, ny, nx]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ResidualError> {
        let dims = x.dims();
        if dims[1] != 2 || dims[2] != self.ny || dims[3] != self.nx {
            return Err(shape_error("vorticity pair", vec![0, 2, self.ny, self.nx], &dims));
        }
        let b = dims[0];
        let both = self.rhs(x.clone().reshape([2 * b, self.ny, self.nx])).reshape([b, 2, self.ny, self.nx]);
        let rhs = both.sum_dim(1).mul_scalar(0.5);
        let w0 = x.clone().narrow(1, 0, 1);
        let w1 = x.narrow(1, 1, 1);
        Ok((w1 - w0).div_scalar(self.dt) - rhs)
    }
}

/// How the residual enters the PBFM loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResidualNorm {
    /// `mean(R²)` (the reference code's Kolmogorov-flow divergence loss).
    #[default]
    Squared,
    /// `mean(|R|)` (the reference code's Darcy loss).
    Absolute,
}

/// The PBFM residual loss `L_R = (1/B) Σ_b t_b^p · mean(R(x̂₁,b)²)` with `x̂₁ = x_t + (1 − t) v`.
///
/// `residual_fn` maps a batch of predicted samples to residuals (any shape `[B, ...]`, e.g.
/// [`SpectralDivergence::forward`] or [`DarcyResidual::forward`]). Same as
/// [`pbfm_residual_loss_with`] with [`ResidualNorm::Squared`].
///
/// # Shapes
/// `x_t`, `v`: `[B, C, H, W]`; `t`: `[B]` → `[1]`.
///
/// # Errors
/// [`ResidualError::Shape`] if `v` and `x_t` differ or `t` is not `[B]`;
/// [`ResidualError::Parameter`] if `p` is negative or not finite; errors of `residual_fn`.
pub fn pbfm_residual_loss<F>(
    x_t: Tensor<4>,
    t: Tensor<1>,
    v: Tensor<4>,
    residual_fn: F,
    p: f64,
) -> Result<Tensor<1>, ResidualError>
where
    F: Fn(Tensor<4>) -> Result<Tensor<4>, ResidualError>,
{
    pbfm_residual_loss_with(x_t, t, v, residual_fn, p, ResidualNorm::Squared)
}

/// The PBFM residual loss `(1/B) Σ_b t_b^p · mean(ρ(R(x̂₁,b)))` with `ρ(r) = r²` or `|r|`
/// (`norm`) and `x̂₁ = x_t + (1 − t) v`.
///
/// # Shapes
/// `x_t`, `v`: `[B, C, H, W]`; `t`: `[B]` → `[1]`.
///
/// # Errors
/// As [`pbfm_residual_loss`].
pub fn pbfm_residual_loss_with<F>(
    x_t: Tensor<4>,
    t: Tensor<1>,
    v: Tensor<4>,
    residual_fn: F,
    p: f64,
    norm: ResidualNorm,
) -> Result<Tensor<1>, ResidualError>
where
    F: Fn(Tensor<4>) -> Result<Tensor<4>, ResidualError>,
{
    let dims = x_t.dims();
    if v.dims() != dims {
        return Err(shape_error("velocity", dims.to_vec(), &v.dims()));
    }
    if t.dims() != [dims[0]] {
        return Err(shape_error("times", vec![dims[0]], &t.dims()));
    }
    if !(p.is_finite() && p >= 0.0) {
        return Err(ResidualError::Parameter {
            name: "p",
            reason: format!("must be finite and non-negative, got {p}"),
        });
    }
    let b = dims[0];
    let t4: Tensor<4> = t.clone().reshape([b, 1, 1, 1]);
    let x1 = x_t + v * (t4.neg().add_scalar(1.0));
    let r = residual_fn(x1)?;
    let pointwise = match norm {
        ResidualNorm::Squared => r.powi_scalar(2),
        ResidualNorm::Absolute => r.abs(),
    };
    let per_sample: Tensor<1> = pointwise.reshape([b as i32, -1]).mean_dim(1).reshape([b]);
    let weight = if p == 0.0 { t.ones_like() } else { t.powf_scalar(p) };
    Ok((weight * per_sample).mean())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bridge::{to_array, to_tensor};
    use fieldflow_pde::darcy::DarcyOperator;
    use fieldflow_pde::{Grid2d, operators};
    use ndarray::{Array4, ArrayD, Axis, s};
    use rand::RngExt;
    use rand_distr::StandardNormal;

    fn normal(shape: [usize; 4], seed: u64) -> Array4<f64> {
        let mut rng = fieldflow_pde::rng::stream(seed, 0);
        Array4::from_shape_simple_fn(shape, || rng.sample(StandardNormal))
    }

    fn max_abs(a: &ArrayD<f64>) -> f64 {
        a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
    }

    /// Max |a − b| / max |b|.
    fn rel_err(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
        assert_eq!(a.shape(), b.shape());
        let d = a.iter().zip(b).fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()));
        d / max_abs(b)
    }

    const NX: usize = 32;
    const NY: usize = 24;
    const LX: f64 = 2.0 * std::f64::consts::PI;
    const LY: f64 = 3.0;

    #[test]
    fn divergence_matches_the_pde_operator_on_random_fields() {
        let device = Device::default();
        let grid = Grid2d::new(NX, NY, LX, LY).unwrap();
        let op = SpectralDivergence::from_grid(&grid, &device).unwrap();
        let x = normal([3, 2, NY, NX], 11);
        let got = to_array(op.forward(to_tensor::<4, _>(x.view(), &device)).unwrap()).unwrap();
        let mut want = ArrayD::zeros(vec![3, 1, NY, NX]);
        for b in 0..3 {
            let d = operators::divergence(&grid, x.index_axis(Axis(0), b)).unwrap();
            want.slice_mut(s![b, 0, .., ..]).assign(&d);
        }
        let err = rel_err(&got, &want);
        println!("divergence: max rel err vs pde = {err:e}");
        assert!(err < 2e-6, "{err}");
        // A resolved trigonometric field against its analytic divergence:
        // u = sin(k y/Ly) cos x, v = (Ly/k) cos(k y/Ly) sin x, ∇·u = −2 sin(k y/Ly) sin x.
        let k = 2.0 * std::f64::consts::PI;
        let smooth = Array4::from_shape_fn([1, 2, NY, NX], |(_, c, i, j)| {
            let (x, y) = (j as f64 * LX / NX as f64, i as f64 * LY / NY as f64);
            if c == 0 { (k * y / LY).sin() * (x).cos() } else { (k * y / LY).cos() * (x).sin() * (LY / k) }
        });
        let d = to_array(op.forward(to_tensor::<4, _>(smooth.view(), &device)).unwrap()).unwrap();
        let exact = Array4::from_shape_fn([1, 1, NY, NX], |(_, _, i, j)| {
            let (x, y) = (j as f64 * LX / NX as f64, i as f64 * LY / NY as f64);
            -2.0 * (k * y / LY).sin() * x.sin()
        })
        .into_dyn();
        assert!(rel_err(&d, &exact) < 1e-5, "{}", rel_err(&d, &exact));
    }

    #[test]
    fn divergence_gradient_is_the_exact_adjoint() {
        let device = Device::default().autodiff();
        let op = SpectralDivergence::new(NY, NX, LY, LX, &device).unwrap();
        let x0 = normal([2, 2, NY, NX], 12);
        let x = to_tensor::<4, _>(x0.view(), &device).require_grad();
        let r = op.forward(x.clone()).unwrap();
        let loss = r.clone().powi_scalar(2).sum().mul_scalar(0.5);
        let grads = loss.backward();
        let got = to_array(x.grad(&grads).unwrap()).unwrap();
        // Adjoint in f64: ∂/∂u = D_xᵀ r along x, ∂/∂v = D_yᵀ r along y.
        let (dx, dy) = (derivative_matrix(NX, LX), derivative_matrix(NY, LY));
        let r = to_array(r.inner()).unwrap();
        let mut want = ArrayD::<f64>::zeros(vec![2, 2, NY, NX]);
        for b in 0..2 {
            for i in 0..NY {
                for j in 0..NX {
                    let gu: f64 = (0..NX).map(|l| dx[l * NX + j] * r[[b, 0, i, l]]).sum();
                    let gv: f64 = (0..NY).map(|l| dy[l * NY + i] * r[[b, 0, l, j]]).sum();
                    want[[b, 0, i, j]] = gu;
                    want[[b, 1, i, j]] = gv;
                }
            }
        }
        let err = rel_err(&got, &want);
        println!("divergence adjoint: max rel err = {err:e}");
        assert!(err < 1e-5, "{err}");
    }

    fn darcy_pair(b: usize, n: usize, seed: u64) -> Array4<f64> {
        let mut x = normal([b, 2, n, n], seed);
        // a = exp(0.5 z) > 0.
        x.slice_mut(s![.., 0, .., ..]).mapv_inplace(|z| (0.5 * z).exp());
        x
    }

    fn darcy_reference(op: &DarcyOperator, x: &Array4<f64>, f: &ndarray::Array2<f64>) -> ArrayD<f64> {
        let (b, n) = (x.shape()[0], x.shape()[2]);
        let mut out = ArrayD::zeros(vec![b, 1, n, n]);
        for k in 0..b {
            let r = op.residual(x.slice(s![k, 0, .., ..]), x.slice(s![k, 1, .., ..]), f.view()).unwrap();
            out.slice_mut(s![k, 0, .., ..]).assign(&r);
        }
        out
    }

    #[test]
    fn darcy_residual_matches_the_pde_operator() {
        let device = Device::default();
        let n = 33;
        let x = darcy_pair(3, n, 21);
        let f = normal([1, 1, n, n], 22).slice(s![0, 0, .., ..]).to_owned();
        for avg in [FaceAverage::Arithmetic, FaceAverage::Harmonic] {
            let res = DarcyResidual::new(n, avg, to_tensor::<2, _>(f.view(), &device)).unwrap();
            let got = to_array(res.forward(to_tensor::<4, _>(x.view(), &device)).unwrap()).unwrap();
            let want = darcy_reference(&DarcyOperator::new(n, avg).unwrap(), &x, &f);
            let err = rel_err(&got, &want);
            println!("darcy {avg:?}: max rel err vs pde = {err:e}");
            assert!(err < 2e-6, "{avg:?}: {err}");
            // Boundary rows and columns are exactly zero.
            for k in 0..3 {
                for i in 0..n {
                    for (p, q) in [(0, i), (n - 1, i), (i, 0), (i, n - 1)] {
                        assert_eq!(got[[k, 0, p, q]], 0.0);
                    }
                }
            }
        }
        let constant = DarcyResidual::constant_forcing(n, FaceAverage::Arithmetic, 1.0, &device).unwrap();
        let got = to_array(constant.forward(to_tensor::<4, _>(x.view(), &device)).unwrap()).unwrap();
        let ones = ndarray::Array2::ones((n, n));
        let want = darcy_reference(&DarcyOperator::new(n, FaceAverage::Arithmetic).unwrap(), &x, &ones);
        assert!(rel_err(&got, &want) < 2e-6);
    }

    /// `½‖R‖²` in f64 through the pde reference.
    fn half_sq(op: &DarcyOperator, x: &Array4<f64>, f: &ndarray::Array2<f64>) -> f64 {
        0.5 * darcy_reference(op, x, f).iter().map(|v| v * v).sum::<f64>()
    }

    #[test]
    fn darcy_gradient_matches_central_differences() {
        let device = Device::default().autodiff();
        let n = 9;
        let x0 = darcy_pair(2, n, 31);
        let f = ndarray::Array2::from_elem((n, n), 1.0);
        let res = DarcyResidual::new(n, FaceAverage::Arithmetic, to_tensor::<2, _>(f.view(), &device)).unwrap();
        let x = to_tensor::<4, _>(x0.view(), &device).require_grad();
        let loss = res.forward(x.clone()).unwrap().powi_scalar(2).sum().mul_scalar(0.5);
        let grads = loss.backward();
        let g = to_array(x.grad(&grads).unwrap()).unwrap();
        let op = DarcyOperator::new(n, FaceAverage::Arithmetic).unwrap();
        // With arithmetic faces R is affine in each single entry, so ½‖R‖² is quadratic in it and
        // the central difference (in f64) is exact up to round-off.
        let eps = 1e-3;
        let mut worst = 0.0_f64;
        let scale = max_abs(&g);
        // Interior, boundary-adjacent and corner entries of both channels.
        for idx in [[0, 0, 4, 4], [1, 0, 0, 3], [0, 1, 2, 7], [1, 1, 1, 1], [0, 0, 8, 8], [1, 1, 0, 5]] {
            let (mut xp, mut xm) = (x0.clone(), x0.clone());
            xp[idx] += eps;
            xm[idx] -= eps;
            let fd = (half_sq(&op, &xp, &f) - half_sq(&op, &xm, &f)) / (2.0 * eps);
            let ad = g[idx.as_slice()];
            worst = worst.max((fd - ad).abs() / scale);
            assert!((fd - ad).abs() <= 1e-5 * scale, "{idx:?}: fd {fd} vs autodiff {ad} (scale {scale})");
        }
        println!("darcy gradient: max |fd − autodiff| / max|grad| = {worst:e}");
    }

    fn ns_setup(n: usize, device: &Device) -> (Grid2d, fieldflow_pde::residuals::VorticityRhs, VorticityResidual, f64) {
        let grid = Grid2d::new(n, n + 8, 2.0 * std::f64::consts::PI, 2.5).unwrap();
        let params = fieldflow_pde::navier_stokes::NsParams { viscosity: 1e-2, drag: 0.1, ..Default::default() };
        let forcing = params.forcing.field(&grid).unwrap();
        let reference = fieldflow_pde::residuals::VorticityRhs::new(&grid, &params).unwrap();
        let dt = 0.05;
        let res =
            VorticityResidual::new(&grid, params.viscosity, params.drag, to_tensor::<2, _>(forcing.view(), device), dt)
                .unwrap();
        (grid, reference, res, dt)
    }

    fn ns_reference(reference: &fieldflow_pde::residuals::VorticityRhs, x: &Array4<f64>, dt: f64) -> ArrayD<f64> {
        let s = x.shape().to_vec();
        let mut out = ArrayD::zeros(vec![s[0], 1, s[2], s[3]]);
        for b in 0..s[0] {
            let (r, _) = reference.residual(x.slice(s![b, 0, .., ..]), x.slice(s![b, 1, .., ..]), dt).unwrap();
            out.slice_mut(s![b, 0, .., ..]).assign(&r);
        }
        out
    }

    #[test]
    fn vorticity_residual_matches_the_pde_reference() {
        let device = Device::default();
        let (grid, reference, res, dt) = ns_setup(24, &device);
        let x = normal([2, 2, grid.ny(), grid.nx()], 51);
        let got = to_array(res.forward(to_tensor::<4, _>(x.view(), &device)).unwrap()).unwrap();
        let want = ns_reference(&reference, &x, dt);
        let err = rel_err(&got, &want);
        println!("vorticity: max rel err vs pde = {err:e}");
        assert!(err < 1e-5, "{err}");
        assert!(matches!(res.forward(Tensor::zeros([1, 2, 24, 24], &device)), Err(ResidualError::Shape { .. })));
    }

    #[test]
    fn vorticity_gradient_matches_central_differences() {
        let device = Device::default().autodiff();
        let (grid, reference, res, dt) = ns_setup(12, &device);
        let x0 = normal([1, 2, grid.ny(), grid.nx()], 52);
        let x = to_tensor::<4, _>(x0.view(), &device).require_grad();
        let loss = res.forward(x.clone()).unwrap().powi_scalar(2).sum().mul_scalar(0.5);
        let grads = loss.backward();
        let g = to_array(x.grad(&grads).unwrap()).unwrap();
        let half_sq = |x: &Array4<f64>| 0.5 * ns_reference(&reference, x, dt).iter().map(|v| v * v).sum::<f64>();
        let (eps, scale) = (1e-4, max_abs(&g));
        let mut worst = 0.0_f64;
        for idx in [[0, 0, 0, 0], [0, 0, 7, 3], [0, 1, 19, 11], [0, 1, 4, 6]] {
            let (mut xp, mut xm) = (x0.clone(), x0.clone());
            xp[idx] += eps;
            xm[idx] -= eps;
            let fd = (half_sq(&xp) - half_sq(&xm)) / (2.0 * eps);
            let ad = g[idx.as_slice()];
            worst = worst.max((fd - ad).abs() / scale);
            assert!((fd - ad).abs() <= 1e-4 * scale, "{idx:?}: fd {fd} vs autodiff {ad} (scale {scale})");
        }
        println!("vorticity gradient: max |fd − autodiff| / max|grad| = {worst:e}");
    }

    #[test]
    fn pbfm_loss_matches_a_direct_f64_computation() {
        let device = Device::default();
        let grid = Grid2d::new(NX, NY, LX, LY).unwrap();
        let op = SpectralDivergence::from_grid(&grid, &device).unwrap();
        let (xt, v) = (normal([3, 2, NY, NX], 41), normal([3, 2, NY, NX], 42));
        let t = [0.1, 0.5, 0.9];
        for p in [0.0, 1.0, 2.0] {
            let loss = pbfm_residual_loss(
                to_tensor::<4, _>(xt.view(), &device),
                Tensor::<1>::from_data(TensorData::new(t.map(|v| v as f32).to_vec(), [3]), &device),
                to_tensor::<4, _>(v.view(), &device),
                |x| op.forward(x),
                p,
            )
            .unwrap()
            .into_scalar::<f32>() as f64;
            let mut want = 0.0;
            for (b, &tb) in t.iter().enumerate() {
                let x1 = &xt.index_axis(Axis(0), b) + &(&v.index_axis(Axis(0), b) * (1.0 - tb));
                let d = operators::divergence(&grid, x1.view()).unwrap();
                want += tb.powf(p) * d.iter().map(|r| r * r).sum::<f64>() / d.len() as f64;
            }
            want /= 3.0;
            assert!((loss - want).abs() <= 1e-5 * want, "p = {p}: {loss} vs {want}");
        }
        // |R| instead of R², p = 1.
        let loss = pbfm_residual_loss_with(
            to_tensor::<4, _>(xt.view(), &device),
            Tensor::<1>::from_data(TensorData::new(t.map(|v| v as f32).to_vec(), [3]), &device),
            to_tensor::<4, _>(v.view(), &device),
            |x| op.forward(x),
            1.0,
            ResidualNorm::Absolute,
        )
        .unwrap()
        .into_scalar::<f32>() as f64;
        let mut want = 0.0;
        for (b, &tb) in t.iter().enumerate() {
            let x1 = &xt.index_axis(Axis(0), b) + &(&v.index_axis(Axis(0), b) * (1.0 - tb));
            let d = operators::divergence(&grid, x1.view()).unwrap();
            want += tb * d.iter().map(|r| r.abs()).sum::<f64>() / d.len() as f64;
        }
        want /= 3.0;
        assert!((loss - want).abs() <= 1e-5 * want, "|R|: {loss} vs {want}");
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let device = Device::default();
        assert!(matches!(
            SpectralDivergence::new(0, 8, 1.0, 1.0, &device),
            Err(ResidualError::Parameter { name: "ny", .. })
        ));
        assert!(matches!(
            SpectralDivergence::new(8, 8, 1.0, f64::NAN, &device),
            Err(ResidualError::Parameter { name: "lx", .. })
        ));
        let op = SpectralDivergence::new(8, 8, 1.0, 1.0, &device).unwrap();
        assert!(matches!(op.forward(Tensor::zeros([1, 3, 8, 8], &device)), Err(ResidualError::Shape { .. })));
        assert!(matches!(
            DarcyResidual::constant_forcing(2, FaceAverage::Arithmetic, 1.0, &device),
            Err(ResidualError::Parameter { name: "s", .. })
        ));
        assert!(matches!(
            DarcyResidual::new(5, FaceAverage::Arithmetic, Tensor::zeros([5, 4], &device)),
            Err(ResidualError::Shape { .. })
        ));
        let res = DarcyResidual::constant_forcing(5, FaceAverage::Arithmetic, 1.0, &device).unwrap();
        assert!(matches!(res.forward(Tensor::zeros([1, 2, 6, 6], &device)), Err(ResidualError::Shape { .. })));
        let x = Tensor::<4>::zeros([2, 2, 8, 8], &device);
        let t = Tensor::<1>::zeros([2], &device);
        let bad_p = pbfm_residual_loss(x.clone(), t.clone(), x.clone(), |x| op.forward(x), -1.0);
        assert!(matches!(bad_p, Err(ResidualError::Parameter { name: "p", .. })));
        let bad_t = pbfm_residual_loss(x.clone(), Tensor::zeros([3], &device), x.clone(), |x| op.forward(x), 1.0);
        assert!(matches!(bad_t, Err(ResidualError::Shape { what: "times", .. })));
    }
}
