//! What a native file says about itself: the root attributes ([`Metadata`]), the grid
//! (`/grid/x`, `/grid/y`) and the on-disk precision ([`Dtype`]).
//!
//! Root attributes of layout version 1: `fieldflow_format = 1`, `pde`, `channels` (string
//! array), `coefficient_channels` (string array, present when `/coefficients` is), `lx`, `ly`,
//! `boundary` (`"periodic"` | `"dirichlet"`), `seed` (absent when unknown, e.g. imported data),
//! `created_by` (`"fieldflow <version>"`), `config` (the TOML text that produced the file).
//! Importers add `source_format` and `source_file`. Forced-flow data add their physics
//! ([`Metadata::flow`]): `viscosity`, `drag`, `forcing` (`"none"` | `"fno"` | `"kolmogorov"`),
//! `forcing_amplitude` and, for Kolmogorov forcing, `forcing_wavenumber`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use fieldflow_pde::navier_stokes::Forcing;
use fieldflow_pde::turbulence::FlowParameters;
use hdf5::Location;

use crate::error::{DatasetError, Result};
use crate::h5;

/// The native layout version this crate reads and writes (`/fieldflow_format`).
pub const FORMAT_VERSION: u32 = 1;

/// `created_by` for files written by this build: `"fieldflow <version>"`.
#[must_use]
pub fn created_by() -> String {
    format!("fieldflow {}", env!("CARGO_PKG_VERSION"))
}

/// Boundary conditions of the fields in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Boundary {
    /// Periodic in x and y.
    Periodic,
    /// Prescribed values on the boundary (Darcy: zero).
    Dirichlet,
}

impl Boundary {
    /// The attribute value: `"periodic"` or `"dirichlet"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Periodic => "periodic",
            Self::Dirichlet => "dirichlet",
        }
    }
}

impl fmt::Display for Boundary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Boundary {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "periodic" => Ok(Self::Periodic),
            "dirichlet" => Ok(Self::Dirichlet),
            other => Err(format!("unknown boundary {other:?} (expected \"periodic\" or \"dirichlet\")")),
        }
    }
}

/// Floating-point precision of the arrays on disk. Readers always return `f64`. Serde names:
/// `f32`, `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Dtype {
    /// IEEE single precision (`<f4`), half the size; the default.
    #[default]
    F32,
    /// IEEE double precision (`<f8`).
    F64,
}

impl Dtype {
    /// Bytes per element.
    #[must_use]
    pub const fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// The numpy-style name: `float32` or `float64`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dtype {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" | "float32" => Ok(Self::F32),
            "f64" | "float64" => Ok(Self::F64),
            other => Err(format!("unknown dtype {other:?} (expected \"f32\" or \"f64\")")),
        }
    }
}

/// Grid coordinates: `/grid/x` (nx,) and `/grid/y` (ny,).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// x coordinates of the columns (the fastest array axis).
    pub x: Vec<f64>,
    /// y coordinates of the rows.
    pub y: Vec<f64>,
}

impl Grid {
    /// A periodic grid on `[0, lx) x [0, ly)`: `x_j = j lx / nx` (the `pde` crate's convention).
    #[must_use]
    pub fn periodic(nx: usize, ny: usize, lx: f64, ly: f64) -> Self {
        let axis = |n: usize, l: f64| (0..n).map(|j| j as f64 * l / n as f64).collect();
        Self { x: axis(nx, lx), y: axis(ny, ly) }
    }

    /// Nodes including the boundary on `[0, lx] x [0, ly]`: `x_j = j lx / (nx - 1)` (FNO Darcy).
    #[must_use]
    pub fn nodes(nx: usize, ny: usize, lx: f64, ly: f64) -> Self {
        let axis = |n: usize, l: f64| {
            if n < 2 { vec![0.0; n] } else { (0..n).map(|j| j as f64 * l / (n - 1) as f64).collect() }
        };
        Self { x: axis(nx, lx), y: axis(ny, ly) }
    }

    /// Cell centres on `[0, lx] x [0, ly]`: `x_j = (j + 1/2) lx / nx` (PDEBench).
    #[must_use]
    pub fn cell_centred(nx: usize, ny: usize, lx: f64, ly: f64) -> Self {
        let axis = |n: usize, l: f64| (0..n).map(|j| (j as f64 + 0.5) * l / n as f64).collect();
        Self { x: axis(nx, lx), y: axis(ny, ly) }
    }

    /// Number of columns.
    #[must_use]
    pub fn nx(&self) -> usize {
        self.x.len()
    }

    /// Number of rows.
    #[must_use]
    pub fn ny(&self) -> usize {
        self.y.len()
    }
}

/// The root attributes of a native file.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// Which PDE produced the fields, e.g. `"navier_stokes"`, `"kolmogorov"`, `"darcy"`.
    pub pde: String,
    /// Names of the channels of `/fields` and `/trajectories`, e.g. `["u", "v"]`.
    pub channels: Vec<String>,
    /// Names of the channels of `/coefficients`, e.g. `["a"]`; empty when the file has none.
    pub coefficient_channels: Vec<String>,
    /// Domain length in x.
    pub lx: f64,
    /// Domain length in y.
    pub ly: f64,
    /// Boundary conditions.
    pub boundary: Boundary,
    /// The seed the samples were drawn with; `None` when unknown (imported data).
    pub seed: Option<u64>,
    /// Program and version that wrote the file, `"fieldflow <version>"`.
    pub created_by: String,
    /// The TOML text of the job that produced the file (for imports: what was imported).
    pub config: String,
    /// For imported files: the upstream format (`SourceFormat` name) and file.
    pub source: Option<(String, String)>,
    /// The viscosity, drag and forcing of a flow (what its energy budget needs); `None` when
    /// unknown or not a flow. A [`Forcing::Field`] is not stored (writing one is an error).
    pub flow: Option<FlowParameters>,
}

impl Metadata {
    /// Metadata with the given PDE and channel names, a unit periodic domain, no coefficients,
    /// no seed, an empty config and `created_by` set to this build.
    #[must_use]
    pub fn new(pde: impl Into<String>, channels: &[&str]) -> Self {
        Self {
            pde: pde.into(),
            channels: channels.iter().map(|&s| s.to_owned()).collect(),
            coefficient_channels: Vec::new(),
            lx: 1.0,
            ly: 1.0,
            boundary: Boundary::Periodic,
            seed: None,
            created_by: created_by(),
            config: String::new(),
            source: None,
            flow: None,
        }
    }

    /// Checks names and lengths; `path` is the file the metadata is for (for the message).
    pub(crate) fn validate(&self, path: &Path) -> Result<()> {
        if self.channels.is_empty() {
            return Err(DatasetError::invalid(path, "metadata: at least one channel name is required"));
        }
        for (what, names) in [("channels", &self.channels), ("coefficient_channels", &self.coefficient_channels)] {
            if let Some(bad) = names.iter().find(|n| n.is_empty() || n.contains('\0')) {
                return Err(DatasetError::invalid(path, format!("metadata: {what}: invalid channel name {bad:?}")));
            }
            for (i, n) in names.iter().enumerate() {
                if names[..i].contains(n) {
                    return Err(DatasetError::invalid(path, format!("metadata: {what}: duplicate channel name {n:?}")));
                }
            }
        }
        if let Some(flow) = &self.flow {
            for (what, v) in [("viscosity", flow.viscosity), ("drag", flow.drag)] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(DatasetError::invalid(path, format!("metadata: {what} = {v} must be non-negative")));
                }
            }
            match &flow.forcing {
                Forcing::Field(_) => {
                    return Err(DatasetError::invalid(
                        path,
                        "metadata: a forcing field cannot be stored as an attribute",
                    ));
                }
                Forcing::Fno { amplitude } | Forcing::Kolmogorov { amplitude, .. } if !amplitude.is_finite() => {
                    return Err(DatasetError::invalid(path, format!("metadata: forcing_amplitude = {amplitude}")));
                }
                _ => {}
            }
        }
        for (what, l) in [("lx", self.lx), ("ly", self.ly)] {
            if !(l.is_finite() && l > 0.0) {
                return Err(DatasetError::invalid(path, format!("metadata: {what} = {l} must be positive and finite")));
            }
        }
        Ok(())
    }

    /// Writes the root attributes.
    pub(crate) fn write(&self, root: &Location, path: &Path) -> Result<()> {
        h5::write_attr_scalar(root, path, "fieldflow_format", FORMAT_VERSION)?;
        h5::write_attr_str(root, path, "pde", &self.pde)?;
        h5::write_attr_strings(root, path, "channels", &self.channels)?;
        if !self.coefficient_channels.is_empty() {
            h5::write_attr_strings(root, path, "coefficient_channels", &self.coefficient_channels)?;
        }
        h5::write_attr_scalar(root, path, "lx", self.lx)?;
        h5::write_attr_scalar(root, path, "ly", self.ly)?;
        h5::write_attr_str(root, path, "boundary", self.boundary.as_str())?;
        if let Some(seed) = self.seed {
            h5::write_attr_scalar(root, path, "seed", seed)?;
        }
        h5::write_attr_str(root, path, "created_by", &self.created_by)?;
        h5::write_attr_str(root, path, "config", &self.config)?;
        if let Some((format, file)) = &self.source {
            h5::write_attr_str(root, path, "source_format", format)?;
            h5::write_attr_str(root, path, "source_file", file)?;
        }
        if let Some(flow) = &self.flow {
            h5::write_attr_scalar(root, path, "viscosity", flow.viscosity)?;
            h5::write_attr_scalar(root, path, "drag", flow.drag)?;
            let (kind, amplitude, wavenumber) = match flow.forcing {
                Forcing::None => ("none", 0.0, None),
                Forcing::Fno { amplitude } => ("fno", amplitude, None),
                Forcing::Kolmogorov { wavenumber, amplitude } => ("kolmogorov", amplitude, Some(wavenumber)),
                // Rejected by `validate`.
                Forcing::Field(_) => ("field", 0.0, None),
            };
            h5::write_attr_str(root, path, "forcing", kind)?;
            h5::write_attr_scalar(root, path, "forcing_amplitude", amplitude)?;
            if let Some(n) = wavenumber {
                h5::write_attr_scalar(root, path, "forcing_wavenumber", n)?;
            }
        }
        Ok(())
    }

    /// Reads and checks the root attributes (the format version first).
    pub(crate) fn read(root: &Location, path: &Path) -> Result<Self> {
        let missing =
            |name: &str| DatasetError::MissingAttribute { path: path.to_path_buf(), attribute: format!("/{name}") };
        let version = h5::read_attr_i64(root, path, "fieldflow_format")?.ok_or_else(|| missing("fieldflow_format"))?;
        if version != i64::from(FORMAT_VERSION) {
            return Err(DatasetError::FormatVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let boundary_text = h5::read_attr_string(root, path, "boundary")?.ok_or_else(|| missing("boundary"))?;
        let boundary = boundary_text.parse().map_err(|reason| DatasetError::BadAttribute {
            path: path.to_path_buf(),
            attribute: "/boundary".into(),
            reason,
        })?;
        let source = match (
            h5::read_attr_string(root, path, "source_format")?,
            h5::read_attr_string(root, path, "source_file")?,
        ) {
            (Some(format), Some(file)) => Some((format, file)),
            (Some(format), None) => Some((format, String::new())),
            _ => None,
        };
        let meta = Self {
            pde: h5::read_attr_string(root, path, "pde")?.ok_or_else(|| missing("pde"))?,
            channels: h5::read_attr_strings(root, path, "channels")?.ok_or_else(|| missing("channels"))?,
            coefficient_channels: h5::read_attr_strings(root, path, "coefficient_channels")?.unwrap_or_default(),
            lx: h5::read_attr_f64(root, path, "lx")?.ok_or_else(|| missing("lx"))?,
            ly: h5::read_attr_f64(root, path, "ly")?.ok_or_else(|| missing("ly"))?,
            boundary,
            seed: h5::read_attr_u64(root, path, "seed")?,
            created_by: h5::read_attr_string(root, path, "created_by")?.unwrap_or_default(),
            config: h5::read_attr_string(root, path, "config")?.unwrap_or_default(),
            source,
            flow: read_flow(root, path)?,
        };
        meta.validate(path)?;
        Ok(meta)
    }
}

/// The flow attributes, when `viscosity` is present.
fn read_flow(root: &Location, path: &Path) -> Result<Option<FlowParameters>> {
    let Some(viscosity) = h5::read_attr_f64(root, path, "viscosity")? else {
        return Ok(None);
    };
    let bad = |attribute: &str, reason: String| DatasetError::BadAttribute {
        path: path.to_path_buf(),
        attribute: format!("/{attribute}"),
        reason,
    };
    let drag = h5::read_attr_f64(root, path, "drag")?.unwrap_or(0.0);
    let kind = h5::read_attr_string(root, path, "forcing")?.unwrap_or_else(|| "none".to_owned());
    let amplitude = || {
        h5::read_attr_f64(root, path, "forcing_amplitude")?
            .ok_or_else(|| bad("forcing_amplitude", format!("missing for forcing {kind:?}")))
    };
    let forcing = match kind.as_str() {
        "none" => Forcing::None,
        "fno" => Forcing::Fno { amplitude: amplitude()? },
        "kolmogorov" => {
            let n = h5::read_attr_u64(root, path, "forcing_wavenumber")?
                .ok_or_else(|| bad("forcing_wavenumber", "missing for Kolmogorov forcing".into()))?;
            let wavenumber = u32::try_from(n).map_err(|_| bad("forcing_wavenumber", format!("{n} is out of range")))?;
            Forcing::Kolmogorov { wavenumber, amplitude: amplitude()? }
        }
        other => return Err(bad("forcing", format!("unknown forcing {other:?} (none | fno | kolmogorov)"))),
    };
    Ok(Some(FlowParameters { viscosity, drag, forcing }))
}
