//! PDEBench 2D files, read in place as [`FieldSource`]s.
//!
//! PDEBench orders spatial axes `(x, y)` — its loaders build the grid with
//! `meshgrid(x, y, indexing="ij")` — while fieldflow stores `[y, x]` with x fastest. Every reader
//! here therefore swaps the two spatial axes: `ours[.., y, x] = pdebench[.., x, y]`, and moves
//! trailing channel axes in front of the spatial ones.
//!
//! | file | datasets | fieldflow |
//! | --- | --- | --- |
//! | 2D Darcy | `tensor` (N,1,X,Y), `nu` (N,X,Y), `x-coordinate` (X,), `y-coordinate` (Y,) | fields `u` = tensor, coefficients `a` = nu, grid from the coordinates (cell centres on the unit square), dirichlet |
//! | 2D incompressible NS | `velocity` (N,T,X,Y,2), `force` (N,X,Y,2), `particles` (N,T,X,Y,1), `t` (N,T) | trajectories `(u, v)` = velocity, fields = last frame, coefficients `(fx, fy)` = force, time = `t[0]` (all rows must agree); `particles` is not imported; cell-centred unit square, dirichlet |
//! | 2D compressible CFD | `density`, `Vx`, `Vy`, `pressure` (N,T,X,Y), `t-coordinate` (T+1,), `x-coordinate`, `y-coordinate` | trajectories `(density, u, v, pressure)`, fields = last frame, time = first T entries of `t-coordinate`, periodic |

use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5::{Dataset, File, SliceOrIndex};
use ndarray::{Array3, Array4, Array5, Axis, Ix3, Ix4, Ix5, s};

use crate::error::{DatasetError, Result};
use crate::h5;
use crate::metadata::{Boundary, Grid, Metadata};
use crate::source::{FieldSource, SourceFormat, imported_metadata};

fn rows(range: &Range<usize>, rest: usize) -> Vec<SliceOrIndex> {
    let mut dims = vec![SliceOrIndex::from(range.clone())];
    dims.extend(std::iter::repeat_n(SliceOrIndex::from(..), rest));
    dims
}

/// Reads coordinates if the dataset exists, else cell centres on `[0, 1]`.
fn coordinates(file: &File, path: &Path, name: &str, n: usize) -> Result<Vec<f64>> {
    if !h5::exists(file, name) {
        return Ok((0..n).map(|j| (j as f64 + 0.5) / n as f64).collect());
    }
    let c = h5::read_f64_flat(file, path, name)?;
    if c.len() != n {
        return Err(DatasetError::shape(path, h5::abs(name), format!("({n},)"), &[c.len()]));
    }
    Ok(c)
}

/// `(B, X, Y)` -> `(B, Y, X)` in standard layout.
fn swap_xy3(a: Array3<f64>) -> Array3<f64> {
    a.permuted_axes([0, 2, 1]).as_standard_layout().into_owned()
}

/// PDEBench 2D Darcy flow.
#[derive(Debug)]
pub struct Darcy {
    path: PathBuf,
    metadata: Metadata,
    grid: Grid,
    tensor: Dataset,
    nu: Dataset,
    len: usize,
    _file: File,
}

impl Darcy {
    /// Opens a PDEBench 2D Darcy file.
    ///
    /// # Errors
    ///
    /// A missing `tensor`/`nu`, shapes other than `tensor` (N,1,X,Y) and `nu` (N,X,Y), or HDF5
    /// errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = h5::open_file(path)?;
        let (tensor, ts) = h5::float_dataset(&file, path, "tensor", 4, "(N, 1, X, Y)")?;
        let &[len, one, nx, ny] = ts.as_slice() else {
            return Err(DatasetError::shape(path, "/tensor", "(N, 1, X, Y)", &ts));
        };
        if one != 1 {
            return Err(DatasetError::shape(path, "/tensor", "(N, 1, X, Y)", &ts));
        }
        let (nu, ns) = h5::float_dataset(&file, path, "nu", 3, "(N, X, Y)")?;
        if ns != [len, nx, ny] {
            return Err(DatasetError::shape(path, "/nu", format!("({len}, {nx}, {ny}) to match /tensor"), &ns));
        }
        let grid =
            Grid { x: coordinates(&file, path, "x-coordinate", nx)?, y: coordinates(&file, path, "y-coordinate", ny)? };
        let metadata =
            imported_metadata(path, SourceFormat::PdebenchDarcy, "darcy", &["u"], &["a"], &grid, Boundary::Dirichlet);
        Ok(Self { path: path.to_path_buf(), metadata, grid, tensor, nu, len, _file: file })
    }
}

impl FieldSource for Darcy {
    source_accessors!(SourceFormat::PdebenchDarcy);
    fn time(&self) -> Option<&[f64]> {
        None
    }
    fn read_fields(&self, range: Range<usize>) -> Result<Array4<f64>> {
        h5::check_range(&self.path, "tensor", &range, self.len)?;
        let t: Array4<f64> = h5::read_select::<Ix4>(&self.tensor, &self.path, "tensor", rows(&range, 3))?;
        Ok(t.permuted_axes([0, 1, 3, 2]).as_standard_layout().into_owned())
    }
    fn read_coefficients(&self, range: Range<usize>) -> Result<Option<Array4<f64>>> {
        h5::check_range(&self.path, "nu", &range, self.len)?;
        let nu = h5::read_select::<Ix3>(&self.nu, &self.path, "nu", rows(&range, 2))?;
        Ok(Some(swap_xy3(nu).insert_axis(Axis(1))))
    }
    fn read_trajectories(&self, _range: Range<usize>) -> Result<Option<Array5<f64>>> {
        Ok(None)
    }
}

/// PDEBench 2D inhomogeneous incompressible Navier–Stokes.
#[derive(Debug)]
pub struct IncompNs {
    path: PathBuf,
    metadata: Metadata,
    grid: Grid,
    velocity: Dataset,
    force: Dataset,
    time: Vec<f64>,
    len: usize,
    _file: File,
}

impl IncompNs {
    /// Opens a PDEBench 2D incompressible NS file (LZF-compressed; the filter is built in).
    ///
    /// # Errors
    ///
    /// A missing `velocity`/`force`/`t`, inconsistent shapes, rows of `t` that differ between
    /// samples, or HDF5 errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = h5::open_file(path)?;
        let (velocity, vs) = h5::float_dataset(&file, path, "velocity", 5, "(N, T, X, Y, 2)")?;
        let &[len, t_len, nx, ny, two] = vs.as_slice() else {
            return Err(DatasetError::shape(path, "/velocity", "(N, T, X, Y, 2)", &vs));
        };
        if two != 2 || t_len == 0 {
            return Err(DatasetError::shape(path, "/velocity", "(N, T, X, Y, 2) with T > 0", &vs));
        }
        let (force, fs) = h5::float_dataset(&file, path, "force", 4, "(N, X, Y, 2)")?;
        if fs != [len, nx, ny, 2] {
            return Err(DatasetError::shape(path, "/force", format!("({len}, {nx}, {ny}, 2) to match /velocity"), &fs));
        }
        let t = h5::read_f64_flat(&file, path, "t")?;
        let time = if t.len() == t_len {
            t
        } else if t.len() == len * t_len && len > 0 {
            let first = t[..t_len].to_vec();
            for (n, row) in t.chunks_exact(t_len).enumerate() {
                if row.iter().zip(&first).any(|(a, b)| (a - b).abs() > 1e-6 * b.abs().max(1.0)) {
                    return Err(DatasetError::invalid(
                        path,
                        format!("/t: sample {n} has different times than sample 0; fieldflow needs one time axis"),
                    ));
                }
            }
            first
        } else {
            return Err(DatasetError::shape(path, "/t", format!("({len}, {t_len}) or ({t_len},)"), &[t.len()]));
        };
        let grid = Grid::cell_centred(nx, ny, 1.0, 1.0);
        let metadata = imported_metadata(
            path,
            SourceFormat::PdebenchIncompNs,
            "navier_stokes",
            &["u", "v"],
            &["fx", "fy"],
            &grid,
            Boundary::Dirichlet,
        );
        Ok(Self { path: path.to_path_buf(), metadata, grid, velocity, force, time, len, _file: file })
    }
}

impl FieldSource for IncompNs {
    source_accessors!(SourceFormat::PdebenchIncompNs);
    fn time(&self) -> Option<&[f64]> {
        Some(&self.time)
    }
    fn read_fields(&self, range: Range<usize>) -> Result<Array4<f64>> {
        h5::check_range(&self.path, "velocity", &range, self.len)?;
        let last = self.time.len() - 1;
        let dims = vec![range.into(), last.into(), (..).into(), (..).into(), (..).into()];
        let v = h5::read_select::<Ix4>(&self.velocity, &self.path, "velocity", dims)?;
        // (B, X, Y, 2) -> (B, 2, Y, X)
        Ok(v.permuted_axes([0, 3, 2, 1]).as_standard_layout().into_owned())
    }
    fn read_coefficients(&self, range: Range<usize>) -> Result<Option<Array4<f64>>> {
        h5::check_range(&self.path, "force", &range, self.len)?;
        let f = h5::read_select::<Ix4>(&self.force, &self.path, "force", rows(&range, 3))?;
        Ok(Some(f.permuted_axes([0, 3, 2, 1]).as_standard_layout().into_owned()))
    }
    fn read_trajectories(&self, range: Range<usize>) -> Result<Option<Array5<f64>>> {
        h5::check_range(&self.path, "velocity", &range, self.len)?;
        let v = h5::read_select::<Ix5>(&self.velocity, &self.path, "velocity", rows(&range, 4))?;
        // (B, T, X, Y, 2) -> (B, T, 2, Y, X)
        Ok(Some(v.permuted_axes([0, 1, 4, 3, 2]).as_standard_layout().into_owned()))
    }
}

/// The PDEBench compressible datasets, in fieldflow's channel order, with their channel names.
const CFD_CHANNELS: [(&str, &str); 4] = [("density", "density"), ("Vx", "u"), ("Vy", "v"), ("pressure", "pressure")];

/// PDEBench 2D compressible Navier–Stokes (CFD).
#[derive(Debug)]
pub struct Compressible {
    path: PathBuf,
    metadata: Metadata,
    grid: Grid,
    datasets: Vec<Dataset>,
    time: Vec<f64>,
    len: usize,
    _file: File,
}

impl Compressible {
    /// Opens a PDEBench 2D compressible CFD file.
    ///
    /// # Errors
    ///
    /// A missing `density`/`Vx`/`Vy`/`pressure`/`t-coordinate`, inconsistent shapes, or HDF5
    /// errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = h5::open_file(path)?;
        let mut datasets = Vec::with_capacity(4);
        let mut shape: Option<Vec<usize>> = None;
        for (name, _) in CFD_CHANNELS {
            let (ds, s) = h5::float_dataset(&file, path, name, 4, "(N, T, X, Y)")?;
            match &shape {
                Some(first) if *first != s => {
                    let expected = format!("{} to match /density", crate::error::ShapeDisplay(first));
                    return Err(DatasetError::shape(path, h5::abs(name), expected, &s));
                }
                _ => shape = Some(s),
            }
            datasets.push(ds);
        }
        let Some(&[len, t_len, nx, ny]) = shape.as_deref() else {
            return Err(DatasetError::MissingDataset { path: path.to_path_buf(), dataset: "/density".into() });
        };
        if t_len == 0 {
            return Err(DatasetError::shape(path, "/density", "(N, T, X, Y) with T > 0", &[len, t_len, nx, ny]));
        }
        let t = h5::read_f64_flat(&file, path, "t-coordinate")?;
        if t.len() != t_len && t.len() != t_len + 1 {
            return Err(DatasetError::shape(
                path,
                "/t-coordinate",
                format!("({},) or ({t_len},)", t_len + 1),
                &[t.len()],
            ));
        }
        let time = t[..t_len].to_vec();
        let grid =
            Grid { x: coordinates(&file, path, "x-coordinate", nx)?, y: coordinates(&file, path, "y-coordinate", ny)? };
        let names: Vec<&str> = CFD_CHANNELS.iter().map(|&(_, ours)| ours).collect();
        let metadata = imported_metadata(
            path,
            SourceFormat::PdebenchCompressible,
            "compressible_navier_stokes",
            &names,
            &[],
            &grid,
            Boundary::Periodic,
        );
        Ok(Self { path: path.to_path_buf(), metadata, grid, datasets, time, len, _file: file })
    }
}

impl FieldSource for Compressible {
    source_accessors!(SourceFormat::PdebenchCompressible);
    fn time(&self) -> Option<&[f64]> {
        Some(&self.time)
    }
    fn read_fields(&self, range: Range<usize>) -> Result<Array4<f64>> {
        h5::check_range(&self.path, "density", &range, self.len)?;
        let (ny, nx) = (self.grid.ny(), self.grid.nx());
        let last = self.time.len() - 1;
        let mut out = Array4::zeros((range.len(), CFD_CHANNELS.len(), ny, nx));
        for (c, (ds, (name, _))) in self.datasets.iter().zip(CFD_CHANNELS).enumerate() {
            let dims = vec![range.clone().into(), last.into(), (..).into(), (..).into()];
            let a = h5::read_select::<Ix3>(ds, &self.path, name, dims)?;
            out.slice_mut(s![.., c, .., ..]).assign(&a.permuted_axes([0, 2, 1]));
        }
        Ok(out)
    }
    fn read_coefficients(&self, _range: Range<usize>) -> Result<Option<Array4<f64>>> {
        Ok(None)
    }
    fn read_trajectories(&self, range: Range<usize>) -> Result<Option<Array5<f64>>> {
        h5::check_range(&self.path, "density", &range, self.len)?;
        let (ny, nx, t) = (self.grid.ny(), self.grid.nx(), self.time.len());
        let mut out = Array5::zeros((range.len(), t, CFD_CHANNELS.len(), ny, nx));
        for (c, (ds, (name, _))) in self.datasets.iter().zip(CFD_CHANNELS).enumerate() {
            let a = h5::read_select::<Ix4>(ds, &self.path, name, rows(&range, 3))?;
            out.slice_mut(s![.., .., c, .., ..]).assign(&a.permuted_axes([0, 1, 3, 2]));
        }
        Ok(Some(out))
    }
}
