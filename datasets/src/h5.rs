//! Thin helpers over `hdf5-metno` that attach the file and object names to every error: opening
//! files (telling "not HDF5" and "old MATLAB" apart), datasets, shapes, float types, and string or
//! numeric attributes written by us, h5py or MATLAB.

use std::io::Read;
use std::path::Path;

use hdf5::types::{FixedAscii, FixedUnicode, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, File, Location};
use ndarray::Array1;

use crate::error::{DatasetError, Result};
use crate::metadata::Dtype;

/// The HDF5 superblock signature; it sits at offset 0 or a power of two from 512 on (after a
/// userblock, as in MATLAB v7.3 files).
const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Opens an HDF5 file read-only, telling apart a missing file, an old MATLAB file and a file
/// that is not HDF5.
pub(crate) fn open_file(path: &Path) -> Result<File> {
    check_hdf5_signature(path)?;
    retry_locked(path, || File::open(path))
}

/// Runs `open` until it succeeds, fails for another reason than HDF5's advisory file lock, or two
/// seconds have passed. A lock can be held for a moment by someone else than the writer: HDF5
/// opens files without close-on-exec, so a process started by a multi-threaded program while one
/// of its threads had a file open keeps that file locked until it exits.
pub(crate) fn retry_locked(path: &Path, open: impl Fn() -> hdf5::Result<File>) -> Result<File> {
    let mut attempt = 0;
    loop {
        match open() {
            Ok(file) => return Ok(file),
            Err(e) if attempt < 40 && e.to_string().contains("unable to lock file") => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(DatasetError::hdf5(path, "/", e)),
        }
    }
}

/// Checks that `path` exists and carries an HDF5 signature at one of the places the format
/// allows (0, 512, 1024, 2048, ...).
pub(crate) fn check_hdf5_signature(path: &Path) -> Result<()> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DatasetError::NotFound { path: path.to_path_buf() });
        }
        Err(e) => return Err(DatasetError::io(path, e)),
    };
    let mut head = Vec::with_capacity(1 << 16);
    (&mut file).take(1 << 16).read_to_end(&mut head).map_err(|e| DatasetError::io(path, e))?;
    let mut offset = 0usize;
    while offset + HDF5_SIGNATURE.len() <= head.len() {
        if &head[offset..offset + HDF5_SIGNATURE.len()] == HDF5_SIGNATURE {
            return Ok(());
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    if head.starts_with(b"MATLAB") {
        return Err(DatasetError::MatlabNotHdf5 { path: path.to_path_buf() });
    }
    Err(DatasetError::NotHdf5 { path: path.to_path_buf() })
}

/// Normalises a dataset name to an absolute HDF5 path (`fields` -> `/fields`).
pub(crate) fn abs(name: &str) -> String {
    if name.starts_with('/') { name.to_owned() } else { format!("/{name}") }
}

/// Opens dataset `name`, reporting a missing one as [`DatasetError::MissingDataset`].
pub(crate) fn dataset(file: &File, path: &Path, name: &str) -> Result<Dataset> {
    if !exists(file, name) {
        return Err(DatasetError::MissingDataset { path: path.to_path_buf(), dataset: abs(name) });
    }
    file.dataset(name).map_err(|e| DatasetError::hdf5(path, abs(name), e))
}

/// Whether a link `name` (possibly nested, `grid/x`) exists; missing intermediate groups count as
/// absent.
pub(crate) fn exists(file: &File, name: &str) -> bool {
    let rel = name.trim_start_matches('/');
    let mut prefix = String::new();
    for part in rel.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if !file.link_exists(&prefix) {
            return false;
        }
    }
    true
}

/// The shape of a dataset, with the error naming it.
pub(crate) fn shape(ds: &Dataset, path: &Path, name: &str) -> Result<Vec<usize>> {
    ds.space().map(|s| s.shape()).map_err(|e| DatasetError::hdf5(path, abs(name), e))
}

/// The datatype of a dataset as a descriptor.
pub(crate) fn descriptor(ds: &Dataset, path: &Path, name: &str) -> Result<TypeDescriptor> {
    ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| DatasetError::hdf5(path, abs(name), e))
}

/// The float precision of a dataset, or [`DatasetError::Dtype`] if it is not a float.
pub(crate) fn float_dtype(ds: &Dataset, path: &Path, name: &str) -> Result<Dtype> {
    match descriptor(ds, path, name)? {
        TypeDescriptor::Float(hdf5::types::FloatSize::U4) => Ok(Dtype::F32),
        TypeDescriptor::Float(hdf5::types::FloatSize::U8) => Ok(Dtype::F64),
        other => Err(DatasetError::Dtype {
            path: path.to_path_buf(),
            dataset: abs(name),
            found: other.to_string(),
            expected: "float32 or float64".into(),
        }),
    }
}

/// Reads a whole numeric dataset into a flat `Vec<f64>` (HDF5 converts the element type).
pub(crate) fn read_f64_flat(file: &File, path: &Path, name: &str) -> Result<Vec<f64>> {
    let ds = dataset(file, path, name)?;
    ds.read_raw::<f64>().map_err(|e| DatasetError::hdf5(path, abs(name), e))
}

/// A label for attribute `name` of the object at `loc`: `/name` on the root, `/ds/@name` elsewhere.
pub(crate) fn attr_label(loc: &Location, name: &str) -> String {
    let base = loc.name();
    if base == "/" || base.is_empty() { format!("/{name}") } else { format!("{base}/@{name}") }
}

/// Whether the object at `loc` has an attribute `name`.
pub(crate) fn has_attr(loc: &Location, name: &str) -> bool {
    loc.attr_names().map(|names| names.iter().any(|n| n == name)).unwrap_or(false)
}

fn open_attr(loc: &Location, path: &Path, name: &str) -> Result<Option<hdf5::Attribute>> {
    if !has_attr(loc, name) {
        return Ok(None);
    }
    loc.attr(name).map(Some).map_err(|e| DatasetError::hdf5(path, attr_label(loc, name), e))
}

fn bad_attr(loc: &Location, path: &Path, name: &str, reason: impl Into<String>) -> DatasetError {
    DatasetError::BadAttribute { path: path.to_path_buf(), attribute: attr_label(loc, name), reason: reason.into() }
}

/// Reads a string attribute (scalar or one-element array; variable or fixed length, ASCII or
/// UTF-8). `Ok(None)` if absent.
pub(crate) fn read_attr_string(loc: &Location, path: &Path, name: &str) -> Result<Option<String>> {
    let Some(strings) = read_attr_strings(loc, path, name)? else { return Ok(None) };
    match <[String; 1]>::try_from(strings) {
        Ok([s]) => Ok(Some(s)),
        Err(v) => Err(bad_attr(loc, path, name, format!("expected one string, found {}", v.len()))),
    }
}

/// Reads a string attribute as a list (a scalar string gives one element). `Ok(None)` if absent.
pub(crate) fn read_attr_strings(loc: &Location, path: &Path, name: &str) -> Result<Option<Vec<String>>> {
    let Some(attr) = open_attr(loc, path, name)? else { return Ok(None) };
    let label = attr_label(loc, name);
    let h5 = |e| DatasetError::hdf5(path, label.clone(), e);
    let desc = attr.dtype().and_then(|t| t.to_descriptor()).map_err(h5)?;
    let strings: Vec<String> = match desc {
        TypeDescriptor::VarLenUnicode => {
            attr.read_raw::<VarLenUnicode>().map_err(h5)?.iter().map(|s| s.as_str().to_owned()).collect()
        }
        TypeDescriptor::VarLenAscii => {
            attr.read_raw::<VarLenAscii>().map_err(h5)?.iter().map(|s| s.as_str().to_owned()).collect()
        }
        TypeDescriptor::FixedAscii(n) if n <= 1024 => {
            attr.read_raw::<FixedAscii<1024>>().map_err(h5)?.iter().map(|s| s.as_str().to_owned()).collect()
        }
        TypeDescriptor::FixedUnicode(n) if n <= 1024 => {
            attr.read_raw::<FixedUnicode<1024>>().map_err(h5)?.iter().map(|s| s.as_str().to_owned()).collect()
        }
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) => {
            return Err(bad_attr(
                loc,
                path,
                name,
                format!("fixed-length strings of {n} > 1024 bytes are not supported"),
            ));
        }
        other => return Err(bad_attr(loc, path, name, format!("expected a string, found type {other}"))),
    };
    Ok(Some(strings))
}

/// Reads a numeric scalar attribute as `f64`. `Ok(None)` if absent.
pub(crate) fn read_attr_f64(loc: &Location, path: &Path, name: &str) -> Result<Option<f64>> {
    read_attr_scalar::<f64>(loc, path, name)
}

/// Reads an integer scalar attribute as `i64`. `Ok(None)` if absent.
pub(crate) fn read_attr_i64(loc: &Location, path: &Path, name: &str) -> Result<Option<i64>> {
    read_attr_scalar::<i64>(loc, path, name)
}

/// Reads an integer scalar attribute as `u64`. `Ok(None)` if absent.
pub(crate) fn read_attr_u64(loc: &Location, path: &Path, name: &str) -> Result<Option<u64>> {
    read_attr_scalar::<u64>(loc, path, name)
}

fn read_attr_scalar<T: hdf5::H5Type + Copy>(loc: &Location, path: &Path, name: &str) -> Result<Option<T>> {
    let Some(attr) = open_attr(loc, path, name)? else { return Ok(None) };
    let label = attr_label(loc, name);
    let desc = attr.dtype().and_then(|t| t.to_descriptor()).map_err(|e| DatasetError::hdf5(path, label.clone(), e))?;
    let numeric = matches!(desc, TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) | TypeDescriptor::Float(_));
    let integral = matches!(desc, TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_));
    let want_int = matches!(T::type_descriptor(), TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_));
    if !numeric || (want_int && !integral) {
        let expected = if want_int { "an integer" } else { "a number" };
        return Err(bad_attr(loc, path, name, format!("expected {expected}, found type {desc}")));
    }
    let values = attr.read_raw::<T>().map_err(|e| DatasetError::hdf5(path, label, e))?;
    match values.as_slice() {
        [v] => Ok(Some(*v)),
        _ => Err(bad_attr(loc, path, name, format!("expected one value, found {}", values.len()))),
    }
}

fn to_vlen(loc: &Location, path: &Path, name: &str, s: &str) -> Result<VarLenUnicode> {
    s.parse::<VarLenUnicode>().map_err(|e| bad_attr(loc, path, name, format!("cannot store string: {e}")))
}

/// Writes a scalar variable-length UTF-8 string attribute (h5py reads it as `str`).
pub(crate) fn write_attr_str(loc: &Location, path: &Path, name: &str, value: &str) -> Result<()> {
    let v = to_vlen(loc, path, name, value)?;
    loc.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .map_err(|e| DatasetError::hdf5(path, attr_label(loc, name), e))
}

/// Writes a 1-D array of variable-length UTF-8 strings (h5py reads an array of `str`).
pub(crate) fn write_attr_strings(loc: &Location, path: &Path, name: &str, values: &[String]) -> Result<()> {
    let v = values.iter().map(|s| to_vlen(loc, path, name, s)).collect::<Result<Vec<_>>>()?;
    loc.new_attr::<VarLenUnicode>()
        .shape(v.len())
        .create(name)
        .and_then(|a| a.write(&Array1::from(v)))
        .map_err(|e| DatasetError::hdf5(path, attr_label(loc, name), e))
}

/// Writes a numeric scalar attribute.
pub(crate) fn write_attr_scalar<T: hdf5::H5Type>(loc: &Location, path: &Path, name: &str, value: T) -> Result<()> {
    loc.new_attr::<T>()
        .shape(())
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .map_err(|e| DatasetError::hdf5(path, attr_label(loc, name), e))
}

/// Writes a 1-D `f64` dataset in one go.
pub(crate) fn write_f64_dataset(group: &hdf5::Group, path: &Path, name: &str, values: &[f64]) -> Result<Dataset> {
    group
        .new_dataset_builder()
        .with_data(values)
        .create(name)
        .map_err(|e| DatasetError::hdf5(path, format!("{}/{name}", group.name().trim_end_matches('/')), e))
}

/// Checks that `range` lies within `0..len` of dataset `name`.
pub(crate) fn check_range(path: &Path, name: &str, range: &std::ops::Range<usize>, len: usize) -> Result<()> {
    if range.start > range.end || range.end > len {
        return Err(DatasetError::Range {
            path: path.to_path_buf(),
            dataset: abs(name),
            start: range.start,
            end: range.end,
            len,
        });
    }
    Ok(())
}

/// Reads a hyperslab (one entry per axis; an index drops that axis) as `f64`.
pub(crate) fn read_select<D: ndarray::Dimension>(
    ds: &Dataset,
    path: &Path,
    name: &str,
    dims: Vec<hdf5::SliceOrIndex>,
) -> Result<ndarray::Array<f64, D>> {
    ds.read_slice::<f64, _, D>(hdf5::Selection::from(hdf5::Hyperslab::from(dims)))
        .map_err(|e| DatasetError::hdf5(path, abs(name), e))
}

/// Opens dataset `name`, checks it holds floats and has `rank` axes, and returns it with its
/// shape.
pub(crate) fn float_dataset(
    file: &File,
    path: &Path,
    name: &str,
    rank: usize,
    layout: &str,
) -> Result<(Dataset, Vec<usize>)> {
    let ds = dataset(file, path, name)?;
    float_dtype(&ds, path, name)?;
    let s = shape(&ds, path, name)?;
    if s.len() != rank {
        return Err(DatasetError::shape(path, abs(name), layout, &s));
    }
    Ok((ds, s))
}
