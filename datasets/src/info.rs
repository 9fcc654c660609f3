//! A summary of any HDF5 data file for humans (`fieldflow info FILE`): detected format, root
//! attributes, every dataset with shape, type, chunks and filters, and the stored per-channel
//! statistics of native files.

use std::fmt;
use std::path::{Path, PathBuf};

use hdf5::types::TypeDescriptor;
use hdf5::{Group, Location};

use crate::error::{DatasetError, Result, ShapeDisplay};
use crate::h5;
use crate::reader::FieldReader;
use crate::source::{SourceFormat, detect_open, open_source_as};
use crate::stats::Stats;

/// One attribute, its value rendered as text.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeInfo {
    /// The attribute name.
    pub name: String,
    /// Its value: strings as is, numbers in Rust's shortest form, arrays as `[a, b, ...]`.
    pub value: String,
}

/// One dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// Absolute path in the file, e.g. `/fields`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type, e.g. `float32`.
    pub dtype: String,
    /// Chunk shape, if chunked.
    pub chunks: Option<Vec<usize>>,
    /// Filters (compression), e.g. `Deflate(4)`, `LZF`.
    pub filters: Vec<String>,
}

/// Per-channel statistics of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    /// `fields`, `coefficients` or `trajectories`.
    pub dataset: String,
    /// The channel name.
    pub channel: String,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

/// What [`info`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub file_size: u64,
    /// The detected format, `None` if unrecognised.
    pub format: Option<SourceFormat>,
    /// Number of samples, when the format was recognised and the file opened.
    pub samples: Option<usize>,
    /// `[C, ny, nx]`, likewise.
    pub sample_shape: Option<[usize; 3]>,
    /// Channel names (fieldflow's, for imported formats).
    pub channels: Vec<String>,
    /// Coefficient channel names.
    pub coefficient_channels: Vec<String>,
    /// Trajectory length T, if any.
    pub time_steps: Option<usize>,
    /// Root attributes.
    pub attributes: Vec<AttributeInfo>,
    /// All datasets, sorted by name.
    pub datasets: Vec<DatasetInfo>,
    /// Stored statistics (native files written by fieldflow).
    pub stats: Vec<ChannelStats>,
    /// Why the file does not open as its format, if it does not (the layout check's message).
    pub problem: Option<String>,
    /// Residual reports in `/checks` (native files, written by `fieldflow check --write`).
    pub checks: Vec<crate::checks::CheckRecord>,
}

/// Summarises an HDF5 file of any kind.
///
/// # Errors
///
/// [`DatasetError::NotFound`], [`DatasetError::NotHdf5`], [`DatasetError::MatlabNotHdf5`], or
/// HDF5 errors while listing the file. A file that is HDF5 but not a valid instance of a known
/// layout is summarised anyway, with [`Info::problem`] saying what is wrong.
pub fn info(path: impl AsRef<Path>) -> Result<Info> {
    let path = path.as_ref();
    let file = h5::open_file(path)?;
    let file_size = std::fs::metadata(path).map_err(|e| DatasetError::io(path, e))?.len();
    let attributes = attributes(&file, path)?;
    let mut datasets = Vec::new();
    walk(&file, path, &mut datasets)?;
    datasets.sort_by(|a, b| a.name.cmp(&b.name));

    let mut out = Info {
        path: path.to_path_buf(),
        file_size,
        format: None,
        samples: None,
        sample_shape: None,
        channels: Vec::new(),
        coefficient_channels: Vec::new(),
        time_steps: None,
        attributes,
        datasets,
        stats: Vec::new(),
        problem: None,
        checks: Vec::new(),
    };
    let format = match detect_open(&file, path) {
        Ok(f) => f,
        Err(e) => {
            out.problem = Some(e.to_string());
            return Ok(out);
        }
    };
    drop(file);
    out.format = Some(format);
    if format == SourceFormat::Native {
        match crate::checks::read_checks(path) {
            Ok(checks) => out.checks = checks,
            Err(e) => out.problem = Some(e.to_string()),
        }
        match FieldReader::open(path) {
            Ok(reader) => {
                let m = reader.metadata();
                for (name, stats, names) in [
                    ("fields", reader.fields_stats(), &m.channels),
                    ("coefficients", reader.coefficients_stats(), &m.coefficient_channels),
                    ("trajectories", reader.trajectories_stats(), &m.channels),
                ] {
                    if let Some(s) = stats {
                        out.stats.extend(channel_stats(name, s, names));
                    }
                }
            }
            Err(e) => {
                out.problem = Some(e.to_string());
                return Ok(out);
            }
        }
    }
    match open_source_as(path, format) {
        Ok(source) => {
            out.samples = Some(source.len());
            out.sample_shape = Some(source.sample_shape());
            out.channels = source.metadata().channels.clone();
            out.coefficient_channels = source.metadata().coefficient_channels.clone();
            out.time_steps = source.time().map(<[f64]>::len);
        }
        Err(e) => out.problem = Some(e.to_string()),
    }
    Ok(out)
}

fn channel_stats(dataset: &str, s: &Stats, names: &[String]) -> Vec<ChannelStats> {
    names
        .iter()
        .enumerate()
        .map(|(c, name)| ChannelStats {
            dataset: dataset.to_owned(),
            channel: name.clone(),
            mean: s.mean.get(c).copied().unwrap_or(f64::NAN),
            std: s.std.get(c).copied().unwrap_or(f64::NAN),
            min: s.min.get(c).copied().unwrap_or(f64::NAN),
            max: s.max.get(c).copied().unwrap_or(f64::NAN),
        })
        .collect()
}

fn attributes(loc: &Location, path: &Path) -> Result<Vec<AttributeInfo>> {
    let mut names = loc.attr_names().map_err(|e| DatasetError::hdf5(path, "/", e))?;
    names.sort();
    names.into_iter().map(|name| Ok(AttributeInfo { value: attribute_value(loc, path, &name)?, name })).collect()
}

fn attribute_value(loc: &Location, path: &Path, name: &str) -> Result<String> {
    let attr = loc.attr(name).map_err(|e| DatasetError::hdf5(path, h5::attr_label(loc, name), e))?;
    let desc = attr.dtype().and_then(|t| t.to_descriptor());
    let list = |items: Vec<String>, scalar: bool| {
        if scalar && items.len() == 1 {
            items.into_iter().next().unwrap_or_default()
        } else {
            format!("[{}]", items.join(", "))
        }
    };
    let scalar = attr.is_scalar();
    Ok(match desc {
        Ok(
            TypeDescriptor::VarLenUnicode
            | TypeDescriptor::VarLenAscii
            | TypeDescriptor::FixedAscii(_)
            | TypeDescriptor::FixedUnicode(_),
        ) => match h5::read_attr_strings(loc, path, name) {
            Ok(Some(v)) => list(v, scalar),
            _ => "<unreadable string>".into(),
        },
        Ok(TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)) => match attr.read_raw::<i64>() {
            Ok(v) => list(v.iter().map(i64::to_string).collect(), scalar),
            Err(_) => "<unreadable integer>".into(),
        },
        Ok(TypeDescriptor::Float(_)) => match attr.read_raw::<f64>() {
            Ok(v) => list(v.iter().map(|x| format!("{x:?}")).collect(), scalar),
            Err(_) => "<unreadable float>".into(),
        },
        Ok(other) => format!("<{other}>"),
        Err(_) => "<unknown type>".into(),
    })
}

fn walk(group: &Group, path: &Path, out: &mut Vec<DatasetInfo>) -> Result<()> {
    let h5 = |e| DatasetError::hdf5(path, group.name(), e);
    for ds in group.datasets().map_err(h5)? {
        let name = ds.name();
        let dtype = ds.dtype().and_then(|t| t.to_descriptor()).map_or_else(|_| "unknown".into(), |d| d.to_string());
        out.push(DatasetInfo {
            shape: ds.shape(),
            dtype,
            chunks: ds.chunk(),
            filters: ds.filters().iter().map(|f| format!("{f:?}")).collect(),
            name,
        });
    }
    for sub in group.groups().map_err(h5)? {
        walk(&sub, path, out)?;
    }
    Ok(())
}

fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", units[u]) }
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file        {} ({})", self.path.display(), human_size(self.file_size))?;
        match self.format {
            Some(SourceFormat::Native) => {
                writeln!(f, "format      fieldflow native layout, version {}", crate::FORMAT_VERSION)?
            }
            Some(other) => {
                writeln!(
                    f,
                    "format      {} ({}; readable directly or with `fieldflow import`)",
                    other.description(),
                    other.name()
                )?;
            }
            None => writeln!(f, "format      unrecognised")?,
        }
        if let (Some(n), Some([c, ny, nx])) = (self.samples, self.sample_shape) {
            writeln!(f, "samples     {n} x {c} channel(s) on {ny} x {nx} (ny x nx)")?;
            writeln!(f, "channels    {}", self.channels.join(", "))?;
            if !self.coefficient_channels.is_empty() {
                writeln!(f, "coefficients {}", self.coefficient_channels.join(", "))?;
            }
            if let Some(t) = self.time_steps {
                writeln!(f, "trajectories {t} time steps")?;
            }
        }
        if let Some(problem) = &self.problem {
            writeln!(f, "problem     {problem}")?;
        }
        if !self.attributes.is_empty() {
            writeln!(f, "attributes")?;
            let width = self.attributes.iter().map(|a| a.name.len()).max().unwrap_or(0);
            for a in &self.attributes {
                let lines = a.value.lines().count();
                if lines > 1 {
                    let first = a.value.lines().next().unwrap_or_default();
                    writeln!(f, "  {:width$} = {first} ... ({lines} lines)", a.name)?;
                } else {
                    writeln!(f, "  {:width$} = {}", a.name, a.value)?;
                }
            }
        }
        writeln!(f, "datasets")?;
        let width = self.datasets.iter().map(|d| d.name.len()).max().unwrap_or(0);
        for d in &self.datasets {
            let mut line = format!("  {:width$}  {:<24} {:<8}", d.name, ShapeDisplay(&d.shape).to_string(), d.dtype);
            if let Some(chunks) = &d.chunks {
                line.push_str(&format!("  chunks {}", ShapeDisplay(chunks)));
            }
            if !d.filters.is_empty() {
                line.push_str(&format!("  filters {}", d.filters.join(", ")));
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        if !self.stats.is_empty() {
            writeln!(f, "statistics (per channel)")?;
            let width = self.stats.iter().map(|s| s.dataset.len() + s.channel.len() + 1).max().unwrap_or(0);
            for s in &self.stats {
                let label = format!("{}/{}", s.dataset, s.channel);
                writeln!(
                    f,
                    "  {label:width$}  mean {:>12.5e}  std {:>12.5e}  min {:>12.5e}  max {:>12.5e}",
                    s.mean, s.std, s.min, s.max
                )?;
            }
        }
        if !self.checks.is_empty() {
            writeln!(f, "checks (per-sample residuals in /checks)")?;
            let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
            for c in &self.checks {
                writeln!(
                    f,
                    "  {:width$}  {}: max {:.3e}  mean {:.3e}  over {} samples  ({}, {})",
                    c.name,
                    c.metric,
                    c.max,
                    c.mean,
                    c.per_sample.len(),
                    c.created_by,
                    c.timestamp
                )?;
            }
        }
        Ok(())
    }
}
