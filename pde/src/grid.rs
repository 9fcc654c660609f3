//! Periodic grid `Grid2d` and its planned 2D real FFT.
//!
//! A grid of `nx × ny` points covers `[0, Lx) × [0, Ly)` with `x_j = j Lx / nx`,
//! `y_i = i Ly / ny`. Fields are `(ny, nx)` arrays, row-major, x fastest.
//!
//! The forward transform is unnormalised, `f̂(k) = Σ_j f(x_j) e^{−i k·x_j}`: a real-to-complex FFT
//! along x followed by a complex FFT along y. The inverse divides by `nx·ny`. A spectrum is an
//! `(ny, nx/2 + 1)` complex array indexed `[ky, kx]`, stored column-major ("Fortran order": y
//! fastest) so that the y transforms run on contiguous memory; [`Grid2d::spectral_zeros`] makes
//! one. Wavenumbers are `kx = 2π m / Lx`, `m = 0..=nx/2`, and `ky = 2π m / Ly` with
//! `m = 0, 1, …, ny/2 − 1, −ny/2, …, −1` (numpy's `fftfreq` order).
//!
//! Nyquist modes: odd derivatives use the *derivative wavenumbers* [`Grid2d::kx_deriv`],
//! [`Grid2d::ky_deriv`], which are zero at the Nyquist index so that the derivative of a real
//! field is real; even operators (the Laplacian) use the full wavenumbers.
//!
//! Transforms reuse FFT plans held by the grid and scratch buffers pooled per thread, so a call
//! allocates nothing after the first on each thread. Grids of at least [`PARALLEL_MIN_POINTS`]
//! points split each transform over rayon's threads; batched transforms over
//! `[batch, channel, y, x]` run one field per task.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use ndarray::{
    Array2, Array4, ArrayView1, ArrayView2, ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis, ShapeBuilder, Zip, s,
};
use num_complex::Complex64;
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

use crate::error::{PdeError, Result, ensure_shape};

/// Grids with at least this many points split a single transform across threads.
pub const PARALLEL_MIN_POINTS: usize = 128 * 128;

/// Rows (forward) or columns (inverse) handled together, so transposes touch whole cache lines.
const BLOCK: usize = 16;

/// A periodic 2D grid with its wavenumbers and FFT plans. Cheap to clone (plans are shared).
#[derive(Clone)]
pub struct Grid2d {
    nx: usize,
    ny: usize,
    lx: f64,
    ly: f64,
    kx: Vec<f64>,
    ky: Vec<f64>,
    kx_deriv: Vec<f64>,
    ky_deriv: Vec<f64>,
    plans: Arc<Plans>,
}

struct Plans {
    r2c: Arc<dyn RealToComplex<f64>>,
    c2r: Arc<dyn ComplexToReal<f64>>,
    fft_y: Arc<dyn Fft<f64>>,
    ifft_y: Arc<dyn Fft<f64>>,
}

impl fmt::Debug for Grid2d {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grid2d")
            .field("nx", &self.nx)
            .field("ny", &self.ny)
            .field("lx", &self.lx)
            .field("ly", &self.ly)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Grid2d {
    fn eq(&self, other: &Self) -> bool {
        (self.nx, self.ny, self.lx, self.ly) == (other.nx, other.ny, other.lx, other.ly)
    }
}

impl Grid2d {
    /// A grid of `nx × ny` points on `[0, lx) × [0, ly)`.
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] if a size is zero or odd, or a length is not finite and positive.
    ///
    /// ```
    /// use fieldflow_pde::grid::Grid2d;
    /// let g = Grid2d::new(96, 64, 2.0 * std::f64::consts::PI, 1.0).unwrap();
    /// assert_eq!(g.spectral_shape(), (64, 49));
    /// assert!(Grid2d::new(63, 64, 1.0, 1.0).is_err());
    /// ```
    pub fn new(nx: usize, ny: usize, lx: f64, ly: f64) -> Result<Self> {
        for (name, n) in [("nx", nx), ("ny", ny)] {
            if n < 2 || n % 2 != 0 {
                return Err(PdeError::InvalidGrid(format!("{name} = {n} must be even and at least 2")));
            }
        }
        for (name, l) in [("lx", lx), ("ly", ly)] {
            if !(l.is_finite() && l > 0.0) {
                return Err(PdeError::InvalidGrid(format!("{name} = {l} must be finite and positive")));
            }
        }
        let nkx = nx / 2 + 1;
        let tau = 2.0 * std::f64::consts::PI;
        let kx: Vec<f64> = (0..nkx).map(|m| tau * m as f64 / lx).collect();
        let ky: Vec<f64> = (0..ny).map(|i| tau * signed_index(i, ny) as f64 / ly).collect();
        let mut kx_deriv = kx.clone();
        kx_deriv[nx / 2] = 0.0;
        let mut ky_deriv = ky.clone();
        ky_deriv[ny / 2] = 0.0;
        let mut real = RealFftPlanner::<f64>::new();
        let mut complex = FftPlanner::<f64>::new();
        let plans = Plans {
            r2c: real.plan_fft_forward(nx),
            c2r: real.plan_fft_inverse(nx),
            fft_y: complex.plan_fft_forward(ny),
            ifft_y: complex.plan_fft_inverse(ny),
        };
        Ok(Self { nx, ny, lx, ly, kx, ky, kx_deriv, ky_deriv, plans: Arc::new(plans) })
    }

    /// A square `n × n` grid on `[0, l)²`.
    ///
    /// # Errors
    /// As [`Grid2d::new`].
    pub fn square(n: usize, l: f64) -> Result<Self> {
        Self::new(n, n, l, l)
    }

    /// Points along x.
    pub fn nx(&self) -> usize {
        self.nx
    }
    /// Points along y.
    pub fn ny(&self) -> usize {
        self.ny
    }
    /// Domain length along x.
    pub fn lx(&self) -> f64 {
        self.lx
    }
    /// Domain length along y.
    pub fn ly(&self) -> f64 {
        self.ly
    }
    /// Grid spacing along x.
    pub fn dx(&self) -> f64 {
        self.lx / self.nx as f64
    }
    /// Grid spacing along y.
    pub fn dy(&self) -> f64 {
        self.ly / self.ny as f64
    }
    /// Number of retained x wavenumbers, `nx/2 + 1`.
    pub fn nkx(&self) -> usize {
        self.nx / 2 + 1
    }
    /// Shape of a physical field, `(ny, nx)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.ny, self.nx)
    }
    /// Shape of a spectrum, `(ny, nx/2 + 1)`.
    pub fn spectral_shape(&self) -> (usize, usize) {
        (self.ny, self.nkx())
    }
    /// x wavenumbers `2π m / Lx`, `m = 0..=nx/2`.
    pub fn kx(&self) -> &[f64] {
        &self.kx
    }
    /// y wavenumbers in `fftfreq` order.
    pub fn ky(&self) -> &[f64] {
        &self.ky
    }
    /// x wavenumbers for odd derivatives (Nyquist set to zero).
    pub fn kx_deriv(&self) -> &[f64] {
        &self.kx_deriv
    }
    /// y wavenumbers for odd derivatives (Nyquist set to zero).
    pub fn ky_deriv(&self) -> &[f64] {
        &self.ky_deriv
    }
    /// Grid coordinates `x_j = j Lx / nx`.
    pub fn x(&self) -> Vec<f64> {
        (0..self.nx).map(|j| j as f64 * self.dx()).collect()
    }
    /// Grid coordinates `y_i = i Ly / ny`.
    pub fn y(&self) -> Vec<f64> {
        (0..self.ny).map(|i| i as f64 * self.dy()).collect()
    }

    /// A physical field `f(x, y)` sampled on the grid, shape `(ny, nx)`.
    pub fn field_from_fn(&self, f: impl Fn(f64, f64) -> f64) -> Array2<f64> {
        let (dx, dy) = (self.dx(), self.dy());
        Array2::from_shape_fn(self.shape(), |(i, j)| f(j as f64 * dx, i as f64 * dy))
    }

    /// A zero spectrum in the layout the transforms expect (column-major `(ny, nx/2+1)`).
    pub fn spectral_zeros(&self) -> Array2<Complex64> {
        Array2::zeros(self.spectral_shape().f())
    }

    /// A real array over spectral indices, `m(kx, ky)` with the *full* wavenumbers, in spectral
    /// layout. Used to build multipliers such as `|k|²`.
    pub fn spectral_map(&self, m: impl Fn(f64, f64) -> f64) -> Array2<f64> {
        Array2::from_shape_fn(self.spectral_shape().f(), |(i, j)| m(self.kx[j], self.ky[i]))
    }

    /// `|k|² = kx² + ky²` in spectral layout.
    pub fn k_squared(&self) -> Array2<f64> {
        self.spectral_map(|kx, ky| kx * kx + ky * ky)
    }

    /// The 2/3-rule dealiasing mask (1 kept, 0 removed) in spectral layout: a mode is kept when
    /// `3|mx| < nx` and `3|my| < ny` (integer mode numbers). This is the FNO data generator's mask
    /// whenever n is not a multiple of 3; the strict inequality keeps quadratic products free of
    /// aliasing for every n.
    pub fn dealias_mask(&self) -> Array2<f64> {
        let (nx, ny) = (self.nx, self.ny);
        Array2::from_shape_fn(self.spectral_shape().f(), |(i, j)| {
            let my = signed_index(i, ny).unsigned_abs();
            if 3 * j < nx && 3 * my < ny { 1.0 } else { 0.0 }
        })
    }

    /// Checks that `a` has shape `(ny, nx)`.
    ///
    /// # Errors
    /// [`PdeError::Shape`] naming `what`.
    pub fn check_field(&self, what: &'static str, shape: &[usize]) -> Result<()> {
        ensure_shape(what, &[self.ny, self.nx], shape)
    }

    /// Checks that `a` has shape `(ny, nx/2 + 1)`.
    ///
    /// # Errors
    /// [`PdeError::Shape`] naming `what`.
    pub fn check_spectrum(&self, what: &'static str, shape: &[usize]) -> Result<()> {
        ensure_shape(what, &[self.ny, self.nkx()], shape)
    }

    /// Forward transform of a field into a new spectrum.
    ///
    /// # Errors
    /// [`PdeError::Shape`] if `field` is not `(ny, nx)`.
    pub fn fft(&self, field: ArrayView2<f64>) -> Result<Array2<Complex64>> {
        let mut out = self.spectral_zeros();
        self.forward(field, out.view_mut())?;
        Ok(out)
    }

    /// Inverse transform of a spectrum into a new field.
    ///
    /// # Errors
    /// [`PdeError::Shape`] if `spec` is not `(ny, nx/2 + 1)`.
    pub fn ifft(&self, spec: ArrayView2<Complex64>) -> Result<Array2<f64>> {
        let mut out = Array2::zeros(self.shape());
        self.inverse(spec, out.view_mut())?;
        Ok(out)
    }

    /// Forward transform `field` (`(ny, nx)`) into `out` (`(ny, nx/2+1)`), unnormalised.
    ///
    /// `out` is fastest in the column-major layout of [`Grid2d::spectral_zeros`]; any other
    /// layout works through a copy.
    ///
    /// # Errors
    /// [`PdeError::Shape`] on a shape mismatch.
    pub fn forward(&self, field: ArrayView2<f64>, out: ArrayViewMut2<Complex64>) -> Result<()> {
        self.check_field("field", field.shape())?;
        self.check_spectrum("spectrum", out.shape())?;
        self.forward_keeping(field, out, self.nkx());
        Ok(())
    }

    /// Forward transform that computes only the x-wavenumber columns `0..keep` and sets the rest
    /// to zero: a third fewer y-transforms when the result is about to be 2/3-dealiased.
    ///
    /// # Errors
    /// [`PdeError::Shape`] on a shape mismatch.
    pub fn forward_truncated(&self, field: ArrayView2<f64>, out: ArrayViewMut2<Complex64>, keep: usize) -> Result<()> {
        self.check_field("field", field.shape())?;
        self.check_spectrum("spectrum", out.shape())?;
        self.forward_keeping(field, out, keep);
        Ok(())
    }

    /// Number of x-wavenumber columns that the 2/3 rule keeps (see [`Grid2d::dealias_mask`]).
    pub fn dealias_kx_count(&self) -> usize {
        (self.nx - 1) / 3 + 1
    }

    fn forward_keeping(&self, field: ArrayView2<f64>, mut out: ArrayViewMut2<Complex64>, keep: usize) {
        // `out.t()` is (nkx, ny); in the expected layout it is standard (row-major) contiguous.
        let out_t = out.view_mut().reversed_axes();
        if out_t.is_standard_layout() {
            self.forward_into_transposed(field, out_t, keep);
        } else {
            let mut tmp = self.spectral_zeros();
            self.forward_into_transposed(field, tmp.view_mut().reversed_axes(), keep);
            out.assign(&tmp);
        }
    }

    /// Inverse transform `spec` (`(ny, nx/2+1)`) into `out` (`(ny, nx)`), dividing by `nx·ny`.
    ///
    /// The imaginary parts of the self-conjugate modes are ignored, as for any real inverse FFT.
    ///
    /// # Errors
    /// [`PdeError::Shape`] on a shape mismatch.
    pub fn inverse(&self, spec: ArrayView2<Complex64>, out: ArrayViewMut2<f64>) -> Result<()> {
        self.check_spectrum("spectrum", spec.shape())?;
        self.check_field("field", out.shape())?;
        let mut work = take_buffer(self.ny * self.nkx());
        {
            let mut w = ArrayViewMut2::from_shape((self.nkx(), self.ny), &mut work[..])
                .map_err(|e| PdeError::InvalidGrid(e.to_string()))?;
            w.assign(&spec.t());
            self.inverse_from_transposed(w, out);
        }
        give_buffer(work);
        Ok(())
    }

    /// Inverse transform that uses `spec` as workspace (its contents are garbage afterwards).
    /// Saves a copy when the spectrum is not needed again.
    ///
    /// # Errors
    /// [`PdeError::Shape`] on a shape mismatch.
    pub fn inverse_consuming(&self, mut spec: ArrayViewMut2<Complex64>, out: ArrayViewMut2<f64>) -> Result<()> {
        self.check_spectrum("spectrum", spec.shape())?;
        self.check_field("field", out.shape())?;
        let spec_t = spec.view_mut().reversed_axes();
        if spec_t.is_standard_layout() {
            self.inverse_from_transposed(spec_t, out);
            Ok(())
        } else {
            self.inverse(spec.view(), out)
        }
    }

    /// A zero batch of spectra `[batch, channel, ny, nx/2+1]` whose planes have the layout of
    /// [`Grid2d::spectral_zeros`].
    pub fn spectral_zeros_batch(&self, batch: usize, channels: usize) -> Array4<Complex64> {
        Array4::zeros((batch, channels, self.nkx(), self.ny)).permuted_axes([0, 1, 3, 2])
    }

    /// Forward transforms of a batch `[batch, channel, ny, nx]` into `out`
    /// `[batch, channel, ny, nx/2+1]` (best made by [`Grid2d::spectral_zeros_batch`]), fields
    /// spread over rayon's threads.
    ///
    /// # Errors
    /// [`PdeError::Shape`] on a shape mismatch.
    pub fn forward_batch(&self, fields: ArrayView4<f64>, mut out: ArrayViewMut4<Complex64>) -> Result<()> {
        let (b, c) = (fields.shape()[0], fields.shape()[1]);
        ensure_shape("fields", &[b, c, self.ny, self.nx], fields.shape())?;
        ensure_shape("spectra", &[b, c, self.ny, self.nkx()], out.shape())?;
        let fields = fields.axis_iter(Axis(0)).into_par_iter();
        fields.zip(out.axis_iter_mut(Axis(0)).into_par_iter()).try_for_each(|(fb, mut ob)| {
            let fb = fb.axis_iter(Axis(0)).into_par_iter();
            fb.zip(ob.axis_iter_mut(Axis(0)).into_par_iter()).try_for_each(|(f, o)| self.forward(f, o))
        })
    }

    /// Inverse transforms of a batch of spectra `[batch, channel, ny, nx/2+1]` into fields
    /// `[batch, channel, ny, nx]`, fields spread over rayon's threads.
    ///
    /// # Errors
    /// [`PdeError::Shape`] on a shape mismatch.
    pub fn inverse_batch(&self, spectra: ArrayView4<Complex64>, mut out: ArrayViewMut4<f64>) -> Result<()> {
        let (b, c) = (spectra.shape()[0], spectra.shape()[1]);
        ensure_shape("spectra", &[b, c, self.ny, self.nkx()], spectra.shape())?;
        ensure_shape("fields", &[b, c, self.ny, self.nx], out.shape())?;
        let specs = spectra.axis_iter(Axis(0)).into_par_iter();
        specs.zip(out.axis_iter_mut(Axis(0)).into_par_iter()).try_for_each(|(sb, mut ob)| {
            let sb = sb.axis_iter(Axis(0)).into_par_iter();
            sb.zip(ob.axis_iter_mut(Axis(0)).into_par_iter()).try_for_each(|(s, o)| self.inverse(s, o))
        })
    }
}

impl Grid2d {
    /// A spectrum-shaped array (layout of [`Grid2d::spectral_zeros`], contents unspecified) taken
    /// from this thread's buffer pool; hand it back with [`recycle_spectrum`].
    pub(crate) fn pooled_spectrum(&self) -> Array2<Complex64> {
        let v = take_buffer(self.ny * self.nkx());
        Array2::from_shape_vec(self.spectral_shape().f(), v).unwrap_or_else(|_| self.spectral_zeros())
    }
}

/// Returns an array from [`Grid2d::pooled_spectrum`] to this thread's pool.
pub(crate) fn recycle_spectrum(a: Array2<Complex64>) {
    give_buffer(a.into_raw_vec_and_offset().0);
}

/// Signed mode number of FFT index `i` of `n`: `0, 1, …, n/2 − 1, −n/2, …, −1`.
pub fn signed_index(i: usize, n: usize) -> isize {
    if i < n / 2 { i as isize } else { i as isize - n as isize }
}

thread_local! {
    static POOL: RefCell<Vec<Vec<Complex64>>> = const { RefCell::new(Vec::new()) };
    static REAL_POOL: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

/// A zeroed-or-garbage complex buffer of at least `len` elements from this thread's pool.
fn take_buffer(len: usize) -> Vec<Complex64> {
    let mut v = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    if v.len() < len {
        v.resize(len, Complex64::new(0.0, 0.0));
    }
    v.truncate(len);
    v
}

fn give_buffer(v: Vec<Complex64>) {
    POOL.with(|p| p.borrow_mut().push(v));
}

fn take_real(len: usize) -> Vec<f64> {
    let mut v = REAL_POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    if v.len() < len {
        v.resize(len, 0.0);
    }
    v.truncate(len);
    v
}

fn give_real(v: Vec<f64>) {
    REAL_POOL.with(|p| p.borrow_mut().push(v));
}

impl Grid2d {
    fn parallel(&self) -> bool {
        self.nx * self.ny >= PARALLEL_MIN_POINTS && rayon::current_num_threads() > 1
    }

    /// Forward transform into `out_t`, the transposed spectrum `(nkx, ny)`, standard layout.
    fn forward_into_transposed(&self, field: ArrayView2<f64>, mut out_t: ArrayViewMut2<Complex64>, keep: usize) {
        let (nx, nkx) = (self.nx, self.nkx());
        let keep = keep.min(nkx);
        let plans = &*self.plans;
        // Phase 1: real FFT of each row, written as columns of `out_t`, BLOCK rows at a time.
        let rows_block = |(rows, mut cols): (ArrayView2<f64>, ArrayViewMut2<Complex64>)| {
            let nb = rows.nrows();
            let mut line = take_real(nx);
            let mut spec = take_buffer(nb * nkx);
            let mut scratch = take_buffer(plans.r2c.get_scratch_len());
            for (r, row) in rows.outer_iter().enumerate() {
                Zip::from(&mut line[..]).and(&row).for_each(|l, &v| *l = v);
                // Lengths are right by construction; realfft only errors on wrong lengths.
                let _ = plans.r2c.process_with_scratch(&mut line, &mut spec[r * nkx..(r + 1) * nkx], &mut scratch);
            }
            for (k, mut col) in cols.outer_iter_mut().enumerate().take(keep) {
                for (r, c) in col.iter_mut().enumerate() {
                    *c = spec[r * nkx + k];
                }
            }
            give_real(line);
            give_buffer(spec);
            give_buffer(scratch);
        };
        let row_chunks = field.axis_chunks_iter(Axis(0), BLOCK);
        let col_chunks = out_t.axis_chunks_iter_mut(Axis(1), BLOCK);
        if self.parallel() {
            row_chunks.into_par_iter().zip(col_chunks.into_par_iter()).for_each(rows_block);
        } else {
            row_chunks.zip(col_chunks).for_each(rows_block);
        }
        // Phase 2: complex FFT along y, contiguous lanes of length ny, for the kept columns.
        self.lanes_y(out_t.slice_mut(s![..keep, ..]), &plans.fft_y);
        out_t.slice_mut(s![keep.., ..]).fill(Complex64::new(0.0, 0.0));
    }

    /// Inverse transform from `spec_t` (transposed spectrum, standard layout; destroyed).
    fn inverse_from_transposed(&self, mut spec_t: ArrayViewMut2<Complex64>, mut out: ArrayViewMut2<f64>) {
        let (nx, ny, nkx) = (self.nx, self.ny, self.nkx());
        let plans = &*self.plans;
        self.lanes_y(spec_t.view_mut(), &plans.ifft_y);
        let scale = 1.0 / (nx * ny) as f64;
        let spec_t = spec_t.view();
        let rows_block = |(i0, mut rows): (usize, ArrayViewMut2<f64>)| {
            let nb = rows.nrows();
            let mut spec = take_buffer(nb * nkx);
            let mut scratch = take_buffer(plans.c2r.get_scratch_len());
            let mut line = take_real(nx);
            for k in 0..nkx {
                let col = spec_t.row(k);
                for r in 0..nb {
                    spec[r * nkx + k] = col[i0 + r] * scale;
                }
            }
            for (r, mut row) in rows.outer_iter_mut().enumerate() {
                let s = &mut spec[r * nkx..(r + 1) * nkx];
                s[0].im = 0.0;
                s[nkx - 1].im = 0.0;
                let _ = plans.c2r.process_with_scratch(s, &mut line, &mut scratch);
                Zip::from(&mut row).and(&line[..]).for_each(|o, &v| *o = v);
            }
            give_buffer(spec);
            give_buffer(scratch);
            give_real(line);
        };
        let chunks = out.axis_chunks_iter_mut(Axis(0), BLOCK);
        if self.parallel() {
            chunks.into_par_iter().enumerate().for_each(|(b, rows)| rows_block((b * BLOCK, rows)));
        } else {
            chunks.enumerate().for_each(|(b, rows)| rows_block((b * BLOCK, rows)));
        }
    }

    /// In-place complex FFT along the contiguous rows (length ny) of `data`.
    fn lanes_y(&self, mut data: ArrayViewMut2<Complex64>, plan: &Arc<dyn Fft<f64>>) {
        let ny = self.ny;
        let run = |lanes: &mut [Complex64]| {
            let mut scratch = take_buffer(plan.get_inplace_scratch_len());
            plan.process_with_scratch(lanes, &mut scratch);
            give_buffer(scratch);
        };
        if let Some(flat) = data.as_slice_mut() {
            if self.parallel() {
                let per_task = ny * self.nkx().div_ceil(rayon::current_num_threads() * 2).max(1);
                flat.par_chunks_mut(per_task).for_each(run);
            } else {
                run(flat);
            }
        } else {
            for mut lane in data.outer_iter_mut() {
                let mut buf: Vec<Complex64> = lane.to_vec();
                run(&mut buf);
                lane.assign(&ArrayView1::from(&buf[..]));
            }
        }
    }
}
