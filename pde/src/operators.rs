//! Spectral differential operators on a periodic [`Grid2d`]: ∂x, ∂y, ∇, ∇·, curl, Δ, Δ⁻¹ and the
//! velocity ↔ vorticity ↔ streamfunction conversions.
//!
//! In Fourier space `∂x ↦ i kx`, `∂y ↦ i ky` (derivative wavenumbers, Nyquist zeroed),
//! `Δ ↦ −|k|²` (full wavenumbers), `Δ⁻¹ ↦ −1/|k|²` with the `k = 0` mode set to zero (the
//! zero-mean solution). With `u = ∂ψ/∂y`, `v = −∂ψ/∂x` and `ω = ∂v/∂x − ∂u/∂y` one has `Δψ = −ω`.
//!
//! Velocity fields are `(2, ny, nx)` arrays with channels `(u, v)`. Every operator is exact for
//! trigonometric polynomials resolved by the grid.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Zip, s};
use num_complex::Complex64;

use crate::error::{Result, ensure_shape};
use crate::grid::{Grid2d, recycle_spectrum};

/// Multiplies a spectrum in place by `m(kx_d, ky_d, k²)`: derivative wavenumbers (Nyquist zero)
/// and the full `|k|²`.
pub fn apply_multiplier(grid: &Grid2d, mut spec: ArrayViewMut2<Complex64>, m: impl Fn(f64, f64, f64) -> Complex64) {
    let (kxd, kyd, kx, ky) = (grid.kx_deriv(), grid.ky_deriv(), grid.kx(), grid.ky());
    for (j, mut col) in spec.columns_mut().into_iter().enumerate() {
        for (i, c) in col.iter_mut().enumerate() {
            *c *= m(kxd[j], kyd[i], kx[j] * kx[j] + ky[i] * ky[i]);
        }
    }
}

/// Applies a Fourier multiplier to a real field: `F⁻¹[m · F f]`.
fn filter(grid: &Grid2d, f: ArrayView2<f64>, m: impl Fn(f64, f64, f64) -> Complex64) -> Result<Array2<f64>> {
    grid.check_field("field", f.shape())?;
    let mut spec = grid.pooled_spectrum();
    grid.forward(f, spec.view_mut())?;
    apply_multiplier(grid, spec.view_mut(), m);
    let mut out = Array2::zeros(grid.shape());
    grid.inverse_consuming(spec.view_mut(), out.view_mut())?;
    recycle_spectrum(spec);
    Ok(out)
}

const I: Complex64 = Complex64::new(0.0, 1.0);

fn real(x: f64) -> Complex64 {
    Complex64::new(x, 0.0)
}

/// `∂f/∂x`.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `f` is not `(ny, nx)`.
///
/// ```
/// use fieldflow_pde::{Grid2d, operators::ddx};
/// let g = Grid2d::square(16, 2.0 * std::f64::consts::PI).unwrap();
/// let f = g.field_from_fn(|x, _| (3.0 * x).sin());
/// let df = ddx(&g, f.view()).unwrap();
/// let exact = g.field_from_fn(|x, _| 3.0 * (3.0 * x).cos());
/// assert!((&df - &exact).iter().all(|e| e.abs() < 1e-12));
/// ```
pub fn ddx(grid: &Grid2d, f: ArrayView2<f64>) -> Result<Array2<f64>> {
    filter(grid, f, |kx, _, _| I * kx)
}

/// `∂f/∂y`.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `f` is not `(ny, nx)`.
pub fn ddy(grid: &Grid2d, f: ArrayView2<f64>) -> Result<Array2<f64>> {
    filter(grid, f, |_, ky, _| I * ky)
}

/// `Δf = ∂²f/∂x² + ∂²f/∂y²`.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `f` is not `(ny, nx)`.
pub fn laplacian(grid: &Grid2d, f: ArrayView2<f64>) -> Result<Array2<f64>> {
    filter(grid, f, |_, _, k2| real(-k2))
}

/// The zero-mean solution `φ` of `Δφ = f − mean(f)`.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `f` is not `(ny, nx)`.
pub fn inverse_laplacian(grid: &Grid2d, f: ArrayView2<f64>) -> Result<Array2<f64>> {
    filter(grid, f, |_, _, k2| if k2 > 0.0 { real(-1.0 / k2) } else { real(0.0) })
}

/// `∇f` as a `(2, ny, nx)` array `(∂f/∂x, ∂f/∂y)`.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `f` is not `(ny, nx)`.
pub fn gradient(grid: &Grid2d, f: ArrayView2<f64>) -> Result<Array3<f64>> {
    grid.check_field("field", f.shape())?;
    let mut out = Array3::zeros((2, grid.ny(), grid.nx()));
    out.slice_mut(s![0, .., ..]).assign(&ddx(grid, f)?);
    out.slice_mut(s![1, .., ..]).assign(&ddy(grid, f)?);
    Ok(out)
}

/// Checks that `uv` is a `(2, ny, nx)` velocity field.
///
/// # Errors
/// [`crate::PdeError::Shape`] naming `what`.
pub fn check_velocity(grid: &Grid2d, what: &'static str, uv: &[usize]) -> Result<()> {
    ensure_shape(what, &[2, grid.ny(), grid.nx()], uv)
}

/// Combines the spectra of the two channels of `uv`: `F⁻¹[mu · û + mv · v̂]`.
fn combine(
    grid: &Grid2d,
    uv: ArrayView3<f64>,
    mu: impl Fn(f64, f64) -> Complex64,
    mv: impl Fn(f64, f64) -> Complex64,
) -> Result<Array2<f64>> {
    check_velocity(grid, "velocity", uv.shape())?;
    let mut su = grid.pooled_spectrum();
    let mut sv = grid.pooled_spectrum();
    grid.forward(uv.slice(s![0, .., ..]), su.view_mut())?;
    grid.forward(uv.slice(s![1, .., ..]), sv.view_mut())?;
    let (kx, ky) = (grid.kx_deriv(), grid.ky_deriv());
    for (j, (mut cu, cv)) in su.columns_mut().into_iter().zip(sv.columns()).enumerate() {
        Zip::from(&mut cu).and(&cv).and(ky).for_each(|a, &b, &ky| *a = mu(kx[j], ky) * *a + mv(kx[j], ky) * b);
    }
    let mut out = Array2::zeros(grid.shape());
    grid.inverse_consuming(su.view_mut(), out.view_mut())?;
    recycle_spectrum(su);
    recycle_spectrum(sv);
    Ok(out)
}

/// `∇·u = ∂u/∂x + ∂v/∂y` of a `(2, ny, nx)` velocity field.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn divergence(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<Array2<f64>> {
    combine(grid, uv, |kx, _| I * kx, |_, ky| I * ky)
}

/// Scalar curl (vorticity) `ω = ∂v/∂x − ∂u/∂y` of a `(2, ny, nx)` velocity field.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn vorticity(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<Array2<f64>> {
    combine(grid, uv, |_, ky| -I * ky, |kx, _| I * kx)
}

/// Streamfunction `ψ` with `Δψ = −ω` and zero mean.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `w` is not `(ny, nx)`.
pub fn streamfunction_from_vorticity(grid: &Grid2d, w: ArrayView2<f64>) -> Result<Array2<f64>> {
    filter(grid, w, |_, _, k2| if k2 > 0.0 { real(1.0 / k2) } else { real(0.0) })
}

/// Velocity `(u, v) = (∂ψ/∂y, −∂ψ/∂x)` from a streamfunction.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `psi` is not `(ny, nx)`.
pub fn velocity_from_streamfunction(grid: &Grid2d, psi: ArrayView2<f64>) -> Result<Array3<f64>> {
    grid.check_field("streamfunction", psi.shape())?;
    let mut out = Array3::zeros((2, grid.ny(), grid.nx()));
    out.slice_mut(s![0, .., ..]).assign(&ddy(grid, psi)?);
    out.slice_mut(s![1, .., ..]).assign(&ddx(grid, psi)?.mapv(|v| -v));
    Ok(out)
}

/// The zero-mean, divergence-free velocity whose vorticity is `ω` (the mean of `ω` is ignored:
/// a periodic velocity cannot carry net vorticity).
///
/// # Errors
/// [`crate::PdeError::Shape`] if `w` is not `(ny, nx)`.
pub fn velocity_from_vorticity(grid: &Grid2d, w: ArrayView2<f64>) -> Result<Array3<f64>> {
    let psi = streamfunction_from_vorticity(grid, w)?;
    velocity_from_streamfunction(grid, psi.view())
}

/// Zero-mean streamfunction of the divergence-free part of `uv`: `ψ = Δ⁻¹(−curl u)`.
///
/// # Errors
/// [`crate::PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn streamfunction_from_velocity(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<Array2<f64>> {
    let w = vorticity(grid, uv)?;
    streamfunction_from_vorticity(grid, w.view())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
        Zip::from(a).and(b).fold(0.0_f64, |m, x, y| m.max((x - y).abs()))
    }

    /// A trigonometric polynomial resolved on both grids used below, with its exact derivatives.
    struct Trig {
        lx: f64,
        ly: f64,
    }
    impl Trig {
        fn k(&self) -> (f64, f64) {
            (2.0 * PI / self.lx, 2.0 * PI / self.ly)
        }
        fn f(&self, x: f64, y: f64) -> f64 {
            let (a, b) = self.k();
            1.5 + (3.0 * a * x).sin() * (2.0 * b * y).cos() + 0.5 * (a * x + 5.0 * b * y).cos()
        }
        fn fx(&self, x: f64, y: f64) -> f64 {
            let (a, b) = self.k();
            3.0 * a * (3.0 * a * x).cos() * (2.0 * b * y).cos() - 0.5 * a * (a * x + 5.0 * b * y).sin()
        }
        fn fy(&self, x: f64, y: f64) -> f64 {
            let (a, b) = self.k();
            -2.0 * b * (3.0 * a * x).sin() * (2.0 * b * y).sin() - 2.5 * b * (a * x + 5.0 * b * y).sin()
        }
        fn lap(&self, x: f64, y: f64) -> f64 {
            let (a, b) = self.k();
            -(9.0 * a * a + 4.0 * b * b) * (3.0 * a * x).sin() * (2.0 * b * y).cos()
                - 0.5 * (a * a + 25.0 * b * b) * (a * x + 5.0 * b * y).cos()
        }
    }

    fn grids() -> Vec<Grid2d> {
        vec![
            Grid2d::new(32, 24, 2.0 * PI, 2.0 * PI).unwrap(),
            Grid2d::new(48, 64, 1.0, 3.0).unwrap(),
            Grid2d::new(160, 144, 1.0, 1.0).unwrap(), // large enough for the parallel path
        ]
    }

    #[test]
    fn forward_inverse_round_trip_and_parseval() {
        for g in grids() {
            let f = g.field_from_fn(|x, y| (x * 7.3).sin() * (y * 1.1 + 0.3).cos().exp() + x * y);
            let spec = g.fft(f.view()).unwrap();
            let back = g.ifft(spec.view()).unwrap();
            let scale = f.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(max_abs_diff(&f, &back) < 1e-13 * scale, "round trip on {g:?}");
            // Parseval with the half-plane weights: modes 0 < kx < nx/2 count twice.
            let n = (g.nx() * g.ny()) as f64;
            let mut energy = 0.0;
            for ((_, j), c) in spec.indexed_iter() {
                let w = if j == 0 || j == g.nx() / 2 { 1.0 } else { 2.0 };
                energy += w * c.norm_sqr();
            }
            let direct: f64 = f.iter().map(|v| v * v).sum();
            assert!((energy / n - direct).abs() < 1e-12 * direct);
        }
    }

    #[test]
    fn forward_matches_direct_dft() {
        let g = Grid2d::new(6, 4, 1.0, 1.0).unwrap();
        let f = g.field_from_fn(|x, y| (x * 3.1 + y * y * 2.0).sin() + 0.2);
        let spec = g.fft(f.view()).unwrap();
        for ((i, j), c) in spec.indexed_iter() {
            let mut direct = Complex64::new(0.0, 0.0);
            for ((p, q), v) in f.indexed_iter() {
                let phase = -2.0 * PI * (i as f64 * p as f64 / 4.0 + j as f64 * q as f64 / 6.0);
                direct += Complex64::from_polar(*v, phase);
            }
            assert!((c - direct).norm() < 1e-13 * 24.0, "mode ({i},{j})");
        }
    }

    #[test]
    fn derivatives_exact_on_trig_polynomials() {
        for g in grids() {
            let t = Trig { lx: g.lx(), ly: g.ly() };
            let f = g.field_from_fn(|x, y| t.f(x, y));
            let scale = |e: &Array2<f64>| e.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            let fx = g.field_from_fn(|x, y| t.fx(x, y));
            let fy = g.field_from_fn(|x, y| t.fy(x, y));
            let lap = g.field_from_fn(|x, y| t.lap(x, y));
            assert!(max_abs_diff(&ddx(&g, f.view()).unwrap(), &fx) <= 1e-12 * scale(&fx));
            assert!(max_abs_diff(&ddy(&g, f.view()).unwrap(), &fy) <= 1e-12 * scale(&fy));
            assert!(max_abs_diff(&laplacian(&g, f.view()).unwrap(), &lap) <= 1e-12 * scale(&lap));
            // Δ⁻¹ recovers the zero-mean part of f.
            let inv = inverse_laplacian(&g, lap.view()).unwrap();
            let f0 = f.mapv(|v| v - 1.5);
            assert!(max_abs_diff(&inv, &f0) <= 1e-12 * scale(&f0));
            let grad = gradient(&g, f.view()).unwrap();
            assert!(max_abs_diff(&grad.slice(s![0, .., ..]).to_owned(), &fx) <= 1e-12 * scale(&fx));
            // div(grad f) = Δf and curl(grad f) = 0.
            let div = divergence(&g, grad.view()).unwrap();
            assert!(max_abs_diff(&div, &lap) <= 1e-12 * scale(&lap));
            let curl = vorticity(&g, grad.view()).unwrap();
            assert!(scale(&curl) <= 1e-12 * scale(&lap));
        }
    }

    #[test]
    fn streamfunction_velocity_vorticity_cycle() {
        for g in grids() {
            let t = Trig { lx: g.lx(), ly: g.ly() };
            let psi = g.field_from_fn(|x, y| t.f(x, y) - 1.5);
            let uv = velocity_from_streamfunction(&g, psi.view()).unwrap();
            let u = g.field_from_fn(|x, y| t.fy(x, y));
            let v = g.field_from_fn(|x, y| -t.fx(x, y));
            let scale = u.iter().chain(v.iter()).fold(0.0_f64, |m, x| m.max(x.abs()));
            assert!(max_abs_diff(&uv.slice(s![0, .., ..]).to_owned(), &u) <= 1e-12 * scale);
            assert!(max_abs_diff(&uv.slice(s![1, .., ..]).to_owned(), &v) <= 1e-12 * scale);
            // ω = −Δψ.
            let w = vorticity(&g, uv.view()).unwrap();
            let w_exact = g.field_from_fn(|x, y| -t.lap(x, y));
            let wscale = w_exact.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
            assert!(max_abs_diff(&w, &w_exact) <= 1e-12 * wscale);
            assert!(divergence(&g, uv.view()).unwrap().iter().all(|d| d.abs() <= 1e-12 * wscale));
            let psi_back = streamfunction_from_velocity(&g, uv.view()).unwrap();
            assert!(max_abs_diff(&psi_back, &psi) <= 1e-12 * 2.0);
            let uv_back = velocity_from_vorticity(&g, w.view()).unwrap();
            assert!((&uv_back - &uv).iter().all(|d| d.abs() <= 1e-12 * scale));
        }
    }

    #[test]
    fn nyquist_mode_has_zero_odd_derivative() {
        let g = Grid2d::square(8, 2.0 * PI).unwrap();
        // cos(4x) is the x-Nyquist mode on 8 points: its sampled derivative is ambiguous, so zero.
        let f = g.field_from_fn(|x, y| (4.0 * x).cos() + (4.0 * y).cos());
        assert!(ddx(&g, f.view()).unwrap().iter().all(|v| v.abs() < 1e-13));
        assert!(ddy(&g, f.view()).unwrap().iter().all(|v| v.abs() < 1e-13));
        // The Laplacian (even) keeps it: Δ cos(4x) = −16 cos(4x).
        let lap = laplacian(&g, f.view()).unwrap();
        assert!(max_abs_diff(&lap, &f.mapv(|v| -16.0 * v)) < 1e-12 * 16.0);
    }

    #[test]
    fn batched_transforms_match_single() {
        let g = Grid2d::new(20, 12, 1.0, 2.0).unwrap();
        let fields = ndarray::Array4::from_shape_fn((3, 2, 12, 20), |(b, c, i, j)| {
            ((b * 7 + c * 3 + i * 5 + j) as f64 * 0.37).sin()
        });
        let mut specs = g.spectral_zeros_batch(3, 2);
        g.forward_batch(fields.view(), specs.view_mut()).unwrap();
        let single = g.fft(fields.slice(s![2, 1, .., ..])).unwrap();
        assert!(Zip::from(&single).and(specs.slice(s![2, 1, .., ..])).all(|a, b| (a - b).norm() < 1e-13));
        let mut back = ndarray::Array4::zeros((3, 2, 12, 20));
        g.inverse_batch(specs.view(), back.view_mut()).unwrap();
        assert!(Zip::from(&back).and(&fields).all(|a, b| (a - b).abs() < 1e-13));
    }

    #[test]
    fn truncated_forward_equals_the_dealiased_columns_of_the_full_transform() {
        for g in grids() {
            let f = g.field_from_fn(|x, y| (x * 5.1).sin() * (y * 2.3 + 0.4).cos().exp());
            let full = g.fft(f.view()).unwrap();
            let mut part = g.spectral_zeros();
            let keep = g.dealias_kx_count();
            g.forward_truncated(f.view(), part.view_mut(), keep).unwrap();
            let mask = g.dealias_mask();
            for ((i, j), c) in part.indexed_iter() {
                if j < keep {
                    assert_eq!(*c, full[[i, j]]);
                } else {
                    assert_eq!(*c, Complex64::new(0.0, 0.0));
                }
                // Every mode the mask keeps is computed.
                if mask[[i, j]] > 0.0 {
                    assert!(j < keep);
                }
            }
            assert!(mask.column(keep - 1).iter().any(|&m| m > 0.0));
        }
    }

    #[test]
    fn shape_errors_are_reported() {
        let g = Grid2d::square(16, 1.0).unwrap();
        let bad = Array2::<f64>::zeros((16, 8));
        assert!(matches!(ddx(&g, bad.view()), Err(crate::PdeError::Shape { .. })));
        let bad_uv = Array3::<f64>::zeros((3, 16, 16));
        assert!(matches!(divergence(&g, bad_uv.view()), Err(crate::PdeError::Shape { .. })));
        assert!(Grid2d::new(0, 16, 1.0, 1.0).is_err());
        assert!(Grid2d::new(16, 15, 1.0, 1.0).is_err());
        assert!(Grid2d::new(16, 16, f64::NAN, 1.0).is_err());
    }
}
