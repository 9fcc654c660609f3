//! One reading interface over every supported file: native files and the upstream PDEBench and
//! FNO files, read in place (no import needed) and returned in fieldflow's conventions
//! (`[batch, channel, y, x]`, `f64`).
//!
//! [`SourceFormat::detect`] tells the formats apart by their dataset names; [`open_source`] opens
//! any of them as a [`FieldSource`]. The mapping of each upstream file is described in
//! `datasets/README.md` and in [`crate::pdebench`] and [`crate::fno_mat`].

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use hdf5::File;
use ndarray::{Array4, Array5};

use crate::error::{DatasetError, Result};
use crate::h5;
use crate::metadata::{Grid, Metadata};
use crate::reader::FieldReader;

/// The file formats fieldflow reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// fieldflow's own layout (version 1).
    Native,
    /// PDEBench 2D Darcy flow (`2D_DarcyFlow_beta*_Train.hdf5`): `nu`, `tensor`.
    PdebenchDarcy,
    /// PDEBench 2D inhomogeneous incompressible Navier–Stokes (`ns_incom_inhom_2d_512-*.h5`):
    /// `velocity`, `force`, `particles`, `t`.
    PdebenchIncompNs,
    /// PDEBench 2D compressible Navier–Stokes (`2D_CFD_*.hdf5`): `Vx`, `Vy`, `density`,
    /// `pressure`.
    PdebenchCompressible,
    /// FNO Navier–Stokes vorticity, MATLAB v7.3 (`NavierStokes_V1e-3_N5000_T50.mat`): `u`, `a`,
    /// `t`.
    FnoNsMat,
    /// FNO Darcy flow, MATLAB v7.3 (`piececonst_r421_N1024_smooth*.mat`): `coeff`, `sol`.
    FnoDarcyMat,
}

impl SourceFormat {
    /// Every format.
    pub const ALL: [Self; 6] = [
        Self::Native,
        Self::PdebenchDarcy,
        Self::PdebenchIncompNs,
        Self::PdebenchCompressible,
        Self::FnoNsMat,
        Self::FnoDarcyMat,
    ];

    /// The short name used on the command line and in `source_format` attributes.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::PdebenchDarcy => "pdebench-darcy",
            Self::PdebenchIncompNs => "pdebench-incomp-ns",
            Self::PdebenchCompressible => "pdebench-compressible",
            Self::FnoNsMat => "fno-ns-mat",
            Self::FnoDarcyMat => "fno-darcy-mat",
        }
    }

    /// A human description, e.g. "a PDEBench 2D Darcy flow file".
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::Native => "a fieldflow file",
            Self::PdebenchDarcy => "a PDEBench 2D Darcy flow file",
            Self::PdebenchIncompNs => "a PDEBench 2D incompressible Navier-Stokes file",
            Self::PdebenchCompressible => "a PDEBench 2D compressible Navier-Stokes (CFD) file",
            Self::FnoNsMat => "an FNO Navier-Stokes .mat (v7.3) file",
            Self::FnoDarcyMat => "an FNO Darcy flow .mat (v7.3) file",
        }
    }

    /// Detects the format of an HDF5 file from its attributes and dataset names.
    ///
    /// # Errors
    ///
    /// [`DatasetError::NotFound`], [`DatasetError::NotHdf5`], [`DatasetError::MatlabNotHdf5`],
    /// or [`DatasetError::UnknownFormat`] listing the datasets found.
    pub fn detect(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = h5::open_file(path)?;
        detect_open(&file, path)
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SourceFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|f| f.name()).collect();
            format!("unknown format {s:?} (expected one of {})", names.join(", "))
        })
    }
}

/// Detects the format of an open file.
pub(crate) fn detect_open(file: &File, path: &Path) -> Result<SourceFormat> {
    if h5::has_attr(file, "fieldflow_format") {
        return Ok(SourceFormat::Native);
    }
    let names = file.member_names().map_err(|e| DatasetError::hdf5(path, "/", e))?;
    let has = |n: &str| names.iter().any(|m| m == n);
    let format = if has("nu") && has("tensor") {
        SourceFormat::PdebenchDarcy
    } else if has("velocity") && (has("force") || has("particles")) {
        SourceFormat::PdebenchIncompNs
    } else if has("Vx") && has("Vy") && has("density") && has("pressure") {
        SourceFormat::PdebenchCompressible
    } else if has("coeff") && has("sol") {
        SourceFormat::FnoDarcyMat
    } else if has("u") && has("a") {
        SourceFormat::FnoNsMat
    } else {
        let datasets = names.into_iter().filter(|n| !n.starts_with('#')).collect();
        return Err(DatasetError::UnknownFormat { path: path.to_path_buf(), datasets });
    };
    Ok(format)
}

/// Samples of any supported file, in fieldflow's conventions: arrays `[batch, channel, y, x]`
/// (trajectories `[batch, time, channel, y, x]`) as `f64`.
pub trait FieldSource: Send + fmt::Debug {
    /// The file.
    fn path(&self) -> &Path;
    /// Its format.
    fn format(&self) -> SourceFormat;
    /// The metadata a native file would carry (for imports: what the import writes).
    fn metadata(&self) -> &Metadata;
    /// Grid coordinates.
    fn grid(&self) -> &Grid;
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `[C, ny, nx]`.
    fn sample_shape(&self) -> [usize; 3];
    /// Times of the trajectory frames, if the source has trajectories.
    fn time(&self) -> Option<&[f64]>;
    /// Reads samples `range`: `(B, C, ny, nx)`.
    ///
    /// # Errors
    ///
    /// [`DatasetError::Range`] for a range past the end, [`DatasetError::Hdf5`] on read errors.
    fn read_fields(&self, range: Range<usize>) -> Result<Array4<f64>>;
    /// Reads the coefficients of samples `range`: `(B, Ca, ny, nx)`, `None` if the source has
    /// none.
    ///
    /// # Errors
    ///
    /// As [`read_fields`](Self::read_fields).
    fn read_coefficients(&self, range: Range<usize>) -> Result<Option<Array4<f64>>>;
    /// Reads the trajectories of samples `range`: `(B, T, C, ny, nx)`, `None` if the source has
    /// none.
    ///
    /// # Errors
    ///
    /// As [`read_fields`](Self::read_fields).
    fn read_trajectories(&self, range: Range<usize>) -> Result<Option<Array5<f64>>>;
}

impl FieldSource for FieldReader {
    fn path(&self) -> &Path {
        FieldReader::path(self)
    }
    fn format(&self) -> SourceFormat {
        SourceFormat::Native
    }
    fn metadata(&self) -> &Metadata {
        FieldReader::metadata(self)
    }
    fn grid(&self) -> &Grid {
        FieldReader::grid(self)
    }
    fn len(&self) -> usize {
        FieldReader::len(self)
    }
    fn sample_shape(&self) -> [usize; 3] {
        FieldReader::sample_shape(self)
    }
    fn time(&self) -> Option<&[f64]> {
        FieldReader::time(self)
    }
    fn read_fields(&self, range: Range<usize>) -> Result<Array4<f64>> {
        self.read_range(range)
    }
    fn read_coefficients(&self, range: Range<usize>) -> Result<Option<Array4<f64>>> {
        if self.has_coefficients() { self.read_coefficients_range(range).map(Some) } else { Ok(None) }
    }
    fn read_trajectories(&self, range: Range<usize>) -> Result<Option<Array5<f64>>> {
        if self.time().is_some() { self.read_trajectories_range(range).map(Some) } else { Ok(None) }
    }
}

/// Opens any supported file, detecting its format.
///
/// # Errors
///
/// Any error of [`SourceFormat::detect`] and of opening that format (missing datasets, shapes
/// that do not fit the format).
pub fn open_source(path: impl AsRef<Path>) -> Result<Box<dyn FieldSource>> {
    let path = path.as_ref();
    let format = SourceFormat::detect(path)?;
    open_source_as(path, format)
}

/// Opens a file as the given format (no detection).
///
/// # Errors
///
/// [`DatasetError::MissingDataset`], [`DatasetError::Shape`], [`DatasetError::Dtype`] when the
/// file does not have that format's layout, or the errors of opening an HDF5 file.
pub fn open_source_as(path: impl AsRef<Path>, format: SourceFormat) -> Result<Box<dyn FieldSource>> {
    let path = path.as_ref();
    Ok(match format {
        SourceFormat::Native => Box::new(FieldReader::open(path)?),
        SourceFormat::PdebenchDarcy => Box::new(crate::pdebench::Darcy::open(path)?),
        SourceFormat::PdebenchIncompNs => Box::new(crate::pdebench::IncompNs::open(path)?),
        SourceFormat::PdebenchCompressible => Box::new(crate::pdebench::Compressible::open(path)?),
        SourceFormat::FnoNsMat => Box::new(crate::fno_mat::NavierStokes::open(path)?),
        SourceFormat::FnoDarcyMat => Box::new(crate::fno_mat::Darcy::open(path)?),
    })
}

/// The metadata of an imported file: `created_by` this build, no seed, the import described in
/// `config`, and the source recorded in `source_format` / `source_file`.
pub(crate) fn imported_metadata(
    path: &Path,
    format: SourceFormat,
    pde: &str,
    channels: &[&str],
    coefficient_channels: &[&str],
    grid: &Grid,
    boundary: crate::metadata::Boundary,
) -> Metadata {
    let file = path.display().to_string();
    let quoted = file.replace('\\', "\\\\").replace('"', "\\\"");
    let config = format!(
        "# Imported by {} from {}\n[import]\nsource = \"{quoted}\"\nformat = \"{}\"\n",
        crate::metadata::created_by(),
        format.description(),
        format.name()
    );
    let mut m = Metadata::new(pde, channels);
    m.coefficient_channels = coefficient_channels.iter().map(|&s| s.to_owned()).collect();
    m.lx = axis_length(&grid.x);
    m.ly = axis_length(&grid.y);
    m.boundary = boundary;
    m.config = config;
    m.source = Some((format.name().to_owned(), file));
    m
}

/// Domain length covered by evenly spaced cell-centred or periodic coordinates: `n * dx`.
/// For node grids including both ends use [`node_axis_length`].
pub(crate) fn axis_length(coords: &[f64]) -> f64 {
    match coords {
        [a, b, ..] if (b - a).is_finite() && b > a => (b - a) * coords.len() as f64,
        _ => 1.0,
    }
}

/// Domain length covered by nodes including both ends: `x_last - x_first`.
pub(crate) fn node_axis_length(coords: &[f64]) -> f64 {
    match coords {
        [a, .., b] if (b - a).is_finite() && b > a => b - a,
        _ => 1.0,
    }
}
