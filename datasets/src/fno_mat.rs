//! FNO benchmark files in MATLAB v7.3 format (HDF5 with a 512-byte userblock), read in place as
//! [`FieldSource`]s.
//!
//! MATLAB is column-major: an array MATLAB calls `(N, X, Y, T)` is stored as the HDF5 dataset
//! `(T, Y, X, N)` (h5py sees the axes reversed). We follow the FNO authors' Python convention
//! (`ns_2d.py`, where `k_x` varies along the first spatial axis): the first spatial MATLAB
//! dimension is **x**. After the reversal the on-disk spatial axes are therefore already
//! `(y, x)`, fieldflow's order; only the sample and time axes move:
//! `ours[n, t, 0, y, x] = disk[t, y, x, n]`.
//!
//! * `NavierStokes_V1e-3_N5000_T50.mat`: `u` (disk `(T, 64, 64, N)`) is the vorticity at times
//!   `t` (disk `(T, 1)`, 1..T for the released files), `a` (disk `(64, 64, N)`) the initial
//!   vorticity. `a` becomes **trajectory frame 0 at time 0**, followed by the T frames of `u`
//!   (trajectories `(N, T+1, 1, 64, 64)`, channel `w`); fields are the last frame; no
//!   coefficients. Periodic unit square, `x_j = j / 64`.
//! * `piececonst_r421_N1024_smooth*.mat`: `coeff` and `sol` (disk `(421, 421, N)`) become
//!   coefficients `a` and fields `u`; nodes including the boundary, `x_j = j / 420`, dirichlet.
//!   The Darcy problem (`-div(a grad u) = 1`, zero boundary values) is symmetric under swapping x
//!   and y in both `a` and `u`, so the orientation convention does not change the physics.

use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5::{Dataset, File, SliceOrIndex};
use ndarray::{Array3, Array4, Array5, Axis, Ix3, Ix4, s};

use crate::error::{DatasetError, Result, ShapeDisplay};
use crate::h5;
use crate::metadata::{Boundary, Grid, Metadata};
use crate::source::{FieldSource, SourceFormat, imported_metadata, node_axis_length};

/// Selects samples `range` along the last axis of a rank-`rank` dataset.
fn last_axis(range: &Range<usize>, rank: usize) -> Vec<SliceOrIndex> {
    let mut dims: Vec<SliceOrIndex> = std::iter::repeat_n(SliceOrIndex::from(..), rank - 1).collect();
    dims.push(range.clone().into());
    dims
}

/// Disk `(Y, X, B)` -> `(B, Y, X)` in standard layout.
fn samples_first(a: Array3<f64>) -> Array3<f64> {
    a.permuted_axes([2, 0, 1]).as_standard_layout().into_owned()
}

/// FNO Navier–Stokes vorticity (`u`, `a`, `t`).
#[derive(Debug)]
pub struct NavierStokes {
    path: PathBuf,
    metadata: Metadata,
    grid: Grid,
    u: Dataset,
    a: Dataset,
    time: Vec<f64>,
    len: usize,
    _file: File,
}

impl NavierStokes {
    /// Opens an FNO Navier–Stokes `.mat` v7.3 file.
    ///
    /// # Errors
    ///
    /// A missing `u`/`a`, `u` not `(T, Y, X, N)` on disk, `a` not `(Y, X, N)`, a `t` whose
    /// length is not T, or HDF5 errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = h5::open_file(path)?;
        let layout = "(T, Y, X, N) on disk (MATLAB (N, X, Y, T))";
        let (u, us) = h5::float_dataset(&file, path, "u", 4, layout)?;
        let &[t_len, ny, nx, len] = us.as_slice() else {
            return Err(DatasetError::shape(path, "/u", layout, &us));
        };
        let (a, a_shape) = h5::float_dataset(&file, path, "a", 3, "(Y, X, N) on disk (MATLAB (N, X, Y))")?;
        if a_shape != [ny, nx, len] {
            let expected = format!("{} on disk (MATLAB (N, X, Y)) to match /u", ShapeDisplay(&[ny, nx, len]));
            return Err(DatasetError::shape(path, "/a", expected, &a_shape));
        }
        let t = if h5::exists(&file, "t") {
            let t = h5::read_f64_flat(&file, path, "t")?;
            if t.len() != t_len {
                return Err(DatasetError::shape(
                    path,
                    "/t",
                    format!("{t_len} values (one per frame of /u)"),
                    &[t.len()],
                ));
            }
            t
        } else {
            (1..=t_len).map(|k| k as f64).collect()
        };
        let time = std::iter::once(0.0).chain(t).collect();
        let grid = Grid::periodic(nx, ny, 1.0, 1.0);
        let metadata =
            imported_metadata(path, SourceFormat::FnoNsMat, "navier_stokes", &["w"], &[], &grid, Boundary::Periodic);
        Ok(Self { path: path.to_path_buf(), metadata, grid, u, a, time, len, _file: file })
    }
}

impl FieldSource for NavierStokes {
    source_accessors!(SourceFormat::FnoNsMat);
    fn time(&self) -> Option<&[f64]> {
        Some(&self.time)
    }
    fn read_fields(&self, range: Range<usize>) -> Result<Array4<f64>> {
        h5::check_range(&self.path, "u", &range, self.len)?;
        // The time axis holds at least `a` (frame 0); the last frame comes from `u` when it has
        // frames, else from `a`.
        let t_u = self.time.len() - 1;
        let last = if t_u > 0 {
            let dims = vec![(t_u - 1).into(), (..).into(), (..).into(), range.into()];
            h5::read_select::<Ix3>(&self.u, &self.path, "u", dims)?
        } else {
            h5::read_select::<Ix3>(&self.a, &self.path, "a", last_axis(&range, 3))?
        };
        Ok(samples_first(last).insert_axis(Axis(1)))
    }
    fn read_coefficients(&self, _range: Range<usize>) -> Result<Option<Array4<f64>>> {
        Ok(None)
    }
    fn read_trajectories(&self, range: Range<usize>) -> Result<Option<Array5<f64>>> {
        h5::check_range(&self.path, "u", &range, self.len)?;
        let (ny, nx, t) = (self.grid.ny(), self.grid.nx(), self.time.len());
        let mut out = Array5::zeros((range.len(), t, 1, ny, nx));
        let a = h5::read_select::<Ix3>(&self.a, &self.path, "a", last_axis(&range, 3))?;
        out.slice_mut(s![.., 0, 0, .., ..]).assign(&a.permuted_axes([2, 0, 1]));
        if t > 1 {
            let u = h5::read_select::<Ix4>(&self.u, &self.path, "u", last_axis(&range, 4))?;
            // (T, Y, X, B) -> (B, T, Y, X)
            out.slice_mut(s![.., 1.., 0, .., ..]).assign(&u.permuted_axes([3, 0, 1, 2]));
        }
        Ok(Some(out))
    }
}

/// FNO Darcy flow (`coeff`, `sol`).
#[derive(Debug)]
pub struct Darcy {
    path: PathBuf,
    metadata: Metadata,
    grid: Grid,
    coeff: Dataset,
    sol: Dataset,
    len: usize,
    _file: File,
}

impl Darcy {
    /// Opens an FNO Darcy `.mat` v7.3 file.
    ///
    /// # Errors
    ///
    /// A missing `coeff`/`sol`, shapes other than `(Y, X, N)` on disk, or HDF5 errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = h5::open_file(path)?;
        let layout = "(Y, X, N) on disk (MATLAB (N, X, Y))";
        let (sol, ss) = h5::float_dataset(&file, path, "sol", 3, layout)?;
        let &[ny, nx, len] = ss.as_slice() else {
            return Err(DatasetError::shape(path, "/sol", layout, &ss));
        };
        let (coeff, cs) = h5::float_dataset(&file, path, "coeff", 3, layout)?;
        if cs != ss {
            return Err(DatasetError::shape(path, "/coeff", format!("{} to match /sol", ShapeDisplay(&ss)), &cs));
        }
        let grid = Grid::nodes(nx, ny, 1.0, 1.0);
        let mut metadata =
            imported_metadata(path, SourceFormat::FnoDarcyMat, "darcy", &["u"], &["a"], &grid, Boundary::Dirichlet);
        metadata.lx = node_axis_length(&grid.x);
        metadata.ly = node_axis_length(&grid.y);
        Ok(Self { path: path.to_path_buf(), metadata, grid, coeff, sol, len, _file: file })
    }
}

impl FieldSource for Darcy {
    source_accessors!(SourceFormat::FnoDarcyMat);
    fn time(&self) -> Option<&[f64]> {
        None
    }
    fn read_fields(&self, range: Range<usize>) -> Result<Array4<f64>> {
        h5::check_range(&self.path, "sol", &range, self.len)?;
        let sol = h5::read_select::<Ix3>(&self.sol, &self.path, "sol", last_axis(&range, 3))?;
        Ok(samples_first(sol).insert_axis(Axis(1)))
    }
    fn read_coefficients(&self, range: Range<usize>) -> Result<Option<Array4<f64>>> {
        h5::check_range(&self.path, "coeff", &range, self.len)?;
        let coeff = h5::read_select::<Ix3>(&self.coeff, &self.path, "coeff", last_axis(&range, 3))?;
        Ok(Some(samples_first(coeff).insert_axis(Axis(1))))
    }
    fn read_trajectories(&self, _range: Range<usize>) -> Result<Option<Array5<f64>>> {
        Ok(None)
    }
}
