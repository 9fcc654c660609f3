//! XDMF 3 sidecars (`<name>.xdmf` beside `<name>.h5`) so that ParaView and VisIt open native
//! files directly.
//!
//! The mesh is a `2DRectMesh` (`Dimensions="ny nx"`) whose `VXVY` geometry points at `/grid/x`
//! and `/grid/y`; values sit on the nodes. Each sample is a uniform grid whose attributes (one per
//! channel of `/fields`, then one per channel of `/coefficients`) are `HyperSlab` data items
//! selecting `(n, c, :, :)` from the HDF5 datasets; the samples form a `Temporal` collection named
//! `fields` whose "time" is the sample index, so ParaView's time controls step through samples.
//! Each of the first [`MAX_TRAJECTORIES`] trajectories becomes its own `Temporal` collection
//! (`trajectory_<n>`) with the times of `/time`. A coefficient channel whose name clashes with a
//! field channel is shown as `coefficient_<name>`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{DatasetError, Result};
use crate::metadata::Dtype;
use crate::reader::FieldReader;
use crate::writer::FileSpec;

/// How many trajectories the sidecar lists (each is a collection of T grids; listing thousands
/// would make the XML larger than the data is useful to browse).
pub const MAX_TRAJECTORIES: usize = 16;

/// The sidecar path for an HDF5 file: the extension replaced by `.xdmf` (`data.h5` ->
/// `data.xdmf`).
///
/// # Errors
///
/// [`DatasetError::Invalid`] if the path has no file name or already ends in `.xdmf`.
pub fn sidecar_path(h5_path: &Path) -> Result<PathBuf> {
    match h5_path.extension() {
        Some(ext) if ext.eq_ignore_ascii_case("xdmf") => {
            Err(DatasetError::invalid(h5_path, "an HDF5 output must not end in .xdmf (that name is its sidecar's)"))
        }
        _ if h5_path.file_name().is_none() => Err(DatasetError::invalid(h5_path, "output path has no file name")),
        _ => Ok(h5_path.with_extension("xdmf")),
    }
}

/// (Re)writes the sidecar of a finished native file, atomically.
///
/// # Errors
///
/// Any error of [`FieldReader::open`]; [`DatasetError::Exists`] if the sidecar exists and
/// `force` is false; [`DatasetError::Io`] if it cannot be written.
pub fn write_xdmf(h5_path: impl AsRef<Path>, force: bool) -> Result<PathBuf> {
    let h5_path = h5_path.as_ref();
    let reader = FieldReader::open(h5_path)?;
    let layout = XdmfLayout::from_reader(&reader);
    let target = sidecar_path(h5_path)?;
    crate::atomic::write_atomic(&target, render(&layout).as_bytes(), force)?;
    Ok(target)
}

/// What the sidecar describes.
#[derive(Debug, Clone)]
pub(crate) struct XdmfLayout {
    h5_name: String,
    pub(crate) samples: usize,
    channels: Vec<String>,
    coefficient_channels: Vec<String>,
    ny: usize,
    nx: usize,
    fields_dtype: Dtype,
    coefficients_dtype: Dtype,
    trajectories_dtype: Dtype,
    time: Option<Vec<f64>>,
}

impl XdmfLayout {
    /// The layout of a file being written from `spec` with `samples` samples.
    pub(crate) fn new(h5_path: &Path, spec: &FileSpec, samples: usize) -> Result<Self> {
        let h5_name = file_name(h5_path)?;
        Ok(Self {
            h5_name,
            samples,
            channels: spec.metadata.channels.clone(),
            coefficient_channels: spec.metadata.coefficient_channels.clone(),
            ny: spec.grid.ny(),
            nx: spec.grid.nx(),
            fields_dtype: spec.dtype,
            coefficients_dtype: spec.dtype,
            trajectories_dtype: spec.dtype,
            time: spec.time.clone(),
        })
    }

    fn from_reader(reader: &FieldReader) -> Self {
        let [_, ny, nx] = reader.sample_shape();
        Self {
            h5_name: reader.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            samples: reader.len(),
            channels: reader.metadata().channels.clone(),
            coefficient_channels: reader.metadata().coefficient_channels.clone(),
            ny,
            nx,
            fields_dtype: reader.dtype(),
            coefficients_dtype: reader.coefficients_dtype().unwrap_or_default(),
            trajectories_dtype: reader.trajectories_dtype().unwrap_or_default(),
            time: reader.time().map(<[f64]>::to_vec),
        }
    }
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| DatasetError::invalid(path, "output path has no file name"))
}

/// Escapes text for XML attribute values and element content.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn join(dims: &[usize]) -> String {
    dims.iter().map(usize::to_string).collect::<Vec<_>>().join(" ")
}

/// Renders the sidecar XML.
pub(crate) fn render(l: &XdmfLayout) -> String {
    let mut x = String::new();
    let h5 = escape(&l.h5_name);
    let mesh = |x: &mut String, indent: &str| {
        let _ = writeln!(x, r#"{indent}<Topology TopologyType="2DRectMesh" Dimensions="{} {}"/>"#, l.ny, l.nx);
        let _ = writeln!(x, r#"{indent}<Geometry GeometryType="VXVY">"#);
        for (n, axis) in [(l.nx, "x"), (l.ny, "y")] {
            let _ = writeln!(
                x,
                r#"{indent}  <DataItem Dimensions="{n}" NumberType="Float" Precision="8" Format="HDF">{h5}:/grid/{axis}</DataItem>"#
            );
        }
        let _ = writeln!(x, "{indent}</Geometry>");
    };
    // One node-centred scalar attribute selecting `start` (with count 1 on all leading axes) from
    // `dataset` of shape `source`.
    let attribute = |x: &mut String,
                     indent: &str,
                     name: &str,
                     dataset: &str,
                     dtype: Dtype,
                     start: &[usize],
                     source: &[usize]| {
        let rank = source.len();
        let mut count = vec![1; rank];
        count[rank - 2] = l.ny;
        count[rank - 1] = l.nx;
        let _ = writeln!(x, r#"{indent}<Attribute Name="{}" AttributeType="Scalar" Center="Node">"#, escape(name));
        // The slab's own Dimensions are those of its result, `ny nx`, matching the 2D topology:
        // VTK's XDMF reader (ParaView's) drops an attribute whose dimensionality differs from the
        // topology's ("data_dimensionality and topology dimensionality mismatch"), so declaring
        // the full-rank count `1 … 1 ny nx` here made every array vanish.
        let _ =
            writeln!(x, r#"{indent}  <DataItem ItemType="HyperSlab" Type="HyperSlab" Dimensions="{} {}">"#, l.ny, l.nx);
        let _ = writeln!(
            x,
            r#"{indent}    <DataItem Dimensions="3 {rank}" NumberType="UInt" Format="XML">{} {} {}</DataItem>"#,
            join(start),
            join(&vec![1; rank]),
            join(&count)
        );
        let _ = writeln!(
            x,
            r#"{indent}    <DataItem Dimensions="{}" NumberType="Float" Precision="{}" Format="HDF">{h5}:{dataset}</DataItem>"#,
            join(source),
            dtype.size()
        );
        let _ = writeln!(x, "{indent}  </DataItem>");
        let _ = writeln!(x, "{indent}</Attribute>");
    };
    let coef_name = |name: &str| {
        if l.channels.iter().any(|c| c == name) { format!("coefficient_{name}") } else { name.to_owned() }
    };

    x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    x.push_str("<!DOCTYPE Xdmf SYSTEM \"Xdmf.dtd\" []>\n");
    x.push_str("<Xdmf Version=\"3.0\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">\n");
    x.push_str("  <Domain>\n");
    let (c, ca) = (l.channels.len(), l.coefficient_channels.len());
    let fields_src = [l.samples, c, l.ny, l.nx];
    let coef_src = [l.samples, ca, l.ny, l.nx];
    x.push_str("    <Grid Name=\"fields\" GridType=\"Collection\" CollectionType=\"Temporal\">\n");
    for n in 0..l.samples {
        let _ = writeln!(x, r#"      <Grid Name="sample_{n}" GridType="Uniform">"#);
        let _ = writeln!(x, r#"        <Time Value="{n}"/>"#);
        mesh(&mut x, "        ");
        for (ci, name) in l.channels.iter().enumerate() {
            attribute(&mut x, "        ", name, "/fields", l.fields_dtype, &[n, ci, 0, 0], &fields_src);
        }
        for (ci, name) in l.coefficient_channels.iter().enumerate() {
            attribute(
                &mut x,
                "        ",
                &coef_name(name),
                "/coefficients",
                l.coefficients_dtype,
                &[n, ci, 0, 0],
                &coef_src,
            );
        }
        x.push_str("      </Grid>\n");
    }
    x.push_str("    </Grid>\n");
    if let Some(time) = &l.time {
        let traj_src = [l.samples, time.len(), c, l.ny, l.nx];
        for n in 0..l.samples.min(MAX_TRAJECTORIES) {
            let _ = writeln!(x, r#"    <Grid Name="trajectory_{n}" GridType="Collection" CollectionType="Temporal">"#);
            for (k, t) in time.iter().enumerate() {
                let _ = writeln!(x, r#"      <Grid Name="trajectory_{n}_step_{k}" GridType="Uniform">"#);
                let _ = writeln!(x, r#"        <Time Value="{t:?}"/>"#);
                mesh(&mut x, "        ");
                for (ci, name) in l.channels.iter().enumerate() {
                    attribute(
                        &mut x,
                        "        ",
                        name,
                        "/trajectories",
                        l.trajectories_dtype,
                        &[n, k, ci, 0, 0],
                        &traj_src,
                    );
                }
                x.push_str("      </Grid>\n");
            }
            x.push_str("    </Grid>\n");
        }
    }
    x.push_str("  </Domain>\n</Xdmf>\n");
    x
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_replaces_the_extension() {
        assert_eq!(sidecar_path(Path::new("out/data.h5")).unwrap(), PathBuf::from("out/data.xdmf"));
        assert_eq!(sidecar_path(Path::new("data")).unwrap(), PathBuf::from("data.xdmf"));
        assert!(sidecar_path(Path::new("data.xdmf")).is_err());
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
