//! Residual reports stored inside native files: the `/checks` group written by
//! `fieldflow check --write`.
//!
//! Each report is a subgroup `/checks/<name>`:
//!
//! ```text
//! /checks/<name>/per_sample   (N,) float64   the judged residual r_i of every sample
//! attributes: kind ("divergence-free" | "darcy" | "finite"), metric (what r_i measures),
//!             max = max_i r_i, mean = (1/N) Σ_i r_i, samples = N,
//!             created_by ("fieldflow <version>"), timestamp (UTC, RFC 3339, e.g. 2026-11-23T16:04:55Z)
//! ```
//!
//! Writing opens the existing file read-write and touches nothing outside `/checks`. A new report
//! is first built under a temporary name in `/checks` and only then replaces an existing report of
//! the same name, so a write that fails while building the report leaves the previous one intact. Only native files are
//! written: upstream files (PDEBench, FNO `.mat`) are never modified.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hdf5::{File, Group};

use crate::error::{DatasetError, Result};
use crate::h5;

/// The group holding the reports.
pub const CHECKS_GROUP: &str = "checks";

/// One residual report.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRecord {
    /// The report's name (its subgroup in `/checks`). Set by [`read_checks`]; [`write_check`]
    /// stores the record under its `name` argument instead.
    pub name: String,
    /// What was checked: `"divergence-free"`, `"darcy"` or `"finite"`.
    pub kind: String,
    /// The judged metric, e.g. `"relative divergence |div u|/|grad u|"`.
    pub metric: String,
    /// The judged residual of every sample, in order (`+∞` for a sample with non-finite values).
    pub per_sample: Vec<f64>,
    /// The largest per-sample residual.
    pub max: f64,
    /// The mean per-sample residual.
    pub mean: f64,
    /// Program and version that wrote the report, `"fieldflow <version>"`.
    pub created_by: String,
    /// When the report was written, UTC, `YYYY-MM-DDThh:mm:ssZ`.
    pub timestamp: String,
}

impl CheckRecord {
    /// A record of per-sample residuals with their max and mean, stamped with this build and the
    /// current UTC time.
    #[must_use]
    pub fn new(kind: impl Into<String>, metric: impl Into<String>, per_sample: Vec<f64>) -> Self {
        let max = per_sample.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = if per_sample.is_empty() { 0.0 } else { per_sample.iter().sum::<f64>() / per_sample.len() as f64 };
        Self {
            name: String::new(),
            kind: kind.into(),
            metric: metric.into(),
            per_sample,
            max,
            mean,
            created_by: crate::metadata::created_by(),
            timestamp: utc_now(),
        }
    }
}

/// Checks a report name: non-empty, no `/`, no NUL, not starting with `.` (reserved for
/// temporary names).
fn check_name(path: &Path, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains('\0') || name.starts_with('.') {
        return Err(DatasetError::invalid(
            path,
            format!("check name {name:?} must be non-empty, without '/' or NUL, and not start with '.'"),
        ));
    }
    Ok(())
}

/// Opens `path` read-write after checking that it is a native file.
fn open_native_rw(path: &Path) -> Result<File> {
    {
        let file = h5::open_file(path)?;
        if !h5::has_attr(&file, "fieldflow_format") {
            let format = crate::source::detect_open(&file, path)
                .map_or_else(|_| "not a fieldflow file".to_owned(), |f| f.description().to_owned());
            return Err(DatasetError::invalid(
                path,
                format!(
                    "refusing to write /checks: this is {format}, not a fieldflow file (upstream files are never \
                     modified; import it with `fieldflow import` first)"
                ),
            ));
        }
        // The read-only handle closes here: HDF5 cannot reopen a file read-write while it is open.
    }
    h5::retry_locked(path, || File::open_rw(path))
}

/// Stores `record` as `/checks/<name>` of the native file at `path`, replacing an existing
/// report of that name.
///
/// # Errors
///
/// [`DatasetError::NotFound`] / [`DatasetError::NotHdf5`] for a missing or non-HDF5 file;
/// [`DatasetError::Invalid`] for a file that is not a native fieldflow file (nothing is written)
/// or a bad `name`; [`DatasetError::Hdf5`] when the file cannot be opened read-write or written.
pub fn write_check(path: &Path, name: &str, record: &CheckRecord) -> Result<(), DatasetError> {
    check_name(path, name)?;
    let file = open_native_rw(path)?;
    let checks = if file.link_exists(CHECKS_GROUP) {
        file.group(CHECKS_GROUP).map_err(|e| DatasetError::hdf5(path, "/checks", e))?
    } else {
        file.create_group(CHECKS_GROUP).map_err(|e| DatasetError::hdf5(path, "/checks", e))?
    };
    let temp = format!(".{name}.tmp-{}", std::process::id());
    if checks.link_exists(&temp) {
        checks.unlink(&temp).map_err(|e| DatasetError::hdf5(path, format!("/checks/{temp}"), e))?;
    }
    let result = write_record(&checks, path, &temp, record);
    if let Err(e) = result {
        let _ = checks.unlink(&temp);
        return Err(e);
    }
    let label = format!("/checks/{name}");
    if checks.link_exists(name) {
        checks.unlink(name).map_err(|e| DatasetError::hdf5(path, label.clone(), e))?;
    }
    checks.relink(&temp, name).map_err(|e| DatasetError::hdf5(path, label.clone(), e))?;
    file.flush().map_err(|e| DatasetError::hdf5(path, label, e))
}

fn write_record(checks: &Group, path: &Path, name: &str, record: &CheckRecord) -> Result<()> {
    let group = checks.create_group(name).map_err(|e| DatasetError::hdf5(path, format!("/checks/{name}"), e))?;
    h5::write_f64_dataset(&group, path, "per_sample", &record.per_sample)?;
    h5::write_attr_str(&group, path, "kind", &record.kind)?;
    h5::write_attr_str(&group, path, "metric", &record.metric)?;
    h5::write_attr_scalar(&group, path, "max", record.max)?;
    h5::write_attr_scalar(&group, path, "mean", record.mean)?;
    h5::write_attr_scalar(&group, path, "samples", record.per_sample.len() as u64)?;
    h5::write_attr_str(&group, path, "created_by", &record.created_by)?;
    h5::write_attr_str(&group, path, "timestamp", &record.timestamp)?;
    Ok(())
}

/// Reads every report in `/checks` of `path`, sorted by name (none if the file has no `/checks`).
/// Temporary entries left by an interrupted write are skipped.
///
/// # Errors
///
/// The errors of opening an HDF5 file; [`DatasetError::MissingAttribute`] /
/// [`DatasetError::BadAttribute`] / [`DatasetError::MissingDataset`] for a malformed report.
pub fn read_checks(path: &Path) -> Result<Vec<CheckRecord>, DatasetError> {
    let file = h5::open_file(path)?;
    if !file.link_exists(CHECKS_GROUP) {
        return Ok(Vec::new());
    }
    let checks = file.group(CHECKS_GROUP).map_err(|e| DatasetError::hdf5(path, "/checks", e))?;
    let mut names = checks.member_names().map_err(|e| DatasetError::hdf5(path, "/checks", e))?;
    names.retain(|n| !n.starts_with('.'));
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let label = format!("/checks/{name}");
            let group = checks.group(&name).map_err(|e| DatasetError::hdf5(path, label.clone(), e))?;
            let missing = |attr: &str| DatasetError::MissingAttribute {
                path: path.to_path_buf(),
                attribute: format!("{label}/@{attr}"),
            };
            let string = |attr: &str| h5::read_attr_string(&group, path, attr)?.ok_or_else(|| missing(attr));
            let number = |attr: &str| h5::read_attr_f64(&group, path, attr)?.ok_or_else(|| missing(attr));
            if !group.link_exists("per_sample") {
                return Err(DatasetError::MissingDataset {
                    path: path.to_path_buf(),
                    dataset: format!("{label}/per_sample"),
                });
            }
            let per_sample = group
                .dataset("per_sample")
                .and_then(|d| d.read_raw::<f64>())
                .map_err(|e| DatasetError::hdf5(path, format!("{label}/per_sample"), e))?;
            Ok(CheckRecord {
                kind: string("kind")?,
                metric: string("metric")?,
                max: number("max")?,
                mean: number("mean")?,
                created_by: string("created_by")?,
                timestamp: string("timestamp")?,
                per_sample,
                name,
            })
        })
        .collect()
}

/// The current UTC time as `YYYY-MM-DDThh:mm:ssZ`.
#[must_use]
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc_timestamp(secs)
}

/// Seconds since the Unix epoch as `YYYY-MM-DDThh:mm:ssZ` (proleptic Gregorian calendar; the
/// civil-from-days algorithm of H. Hinnant).
fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Dtype, FieldWriter, FileSpec, Grid, Metadata, WriterOptions};
    use ndarray::Array4;

    fn native(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("f.h5");
        let spec = FileSpec::new(Metadata::new("ns2d", &["u", "v"]), Grid::periodic(4, 4, 1.0, 1.0), Dtype::F64);
        let mut w = FieldWriter::create(&path, spec, &WriterOptions::default()).unwrap();
        w.append(Array4::from_shape_fn((3, 2, 4, 4), |(n, c, y, x)| (n + c + y * x) as f64).view(), None).unwrap();
        w.finish().unwrap();
        path
    }

    #[test]
    fn timestamps_follow_the_civil_calendar() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_795_450_000), "2026-11-23T16:06:40Z");
        assert_eq!(utc_timestamp(4_107_542_399), "2100-02-28T23:59:59Z");
        let now = utc_now();
        assert_eq!(now.len(), 20, "{now}");
    }

    #[test]
    fn records_round_trip_and_a_same_name_record_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = native(dir.path());
        assert!(read_checks(&path).unwrap().is_empty());
        let first = CheckRecord::new("divergence-free", "relative divergence", vec![1e-14, 3e-14, f64::INFINITY]);
        assert_eq!(first.max, f64::INFINITY);
        write_check(&path, "divergence", &first).unwrap();
        let other = CheckRecord::new("finite", "none", vec![0.0; 3]);
        write_check(&path, "finite", &other).unwrap();
        let back = read_checks(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], CheckRecord { name: "divergence".into(), ..first });
        assert_eq!(back[1].name, "finite");

        let second = CheckRecord::new("divergence-free", "relative divergence", vec![2.0, 4.0, 6.0]);
        write_check(&path, "divergence", &second).unwrap();
        let back = read_checks(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].per_sample, vec![2.0, 4.0, 6.0]);
        assert_eq!((back[0].max, back[0].mean), (6.0, 4.0));
        // The fields are untouched and the file still opens as a native file.
        let reader = crate::FieldReader::open(&path).unwrap();
        assert_eq!(reader.read_range(2..3).unwrap()[[0, 1, 3, 2]], 9.0);
    }

    #[test]
    fn non_native_files_and_bad_names_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upstream.h5");
        {
            let f = File::create(&path).unwrap();
            f.new_dataset_builder().with_data(&[1.0_f64, 2.0]).create("coeff").unwrap();
            f.new_dataset_builder().with_data(&[1.0_f64, 2.0]).create("sol").unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let record = CheckRecord::new("finite", "none", vec![0.0]);
        let err = write_check(&path, "finite", &record).unwrap_err();
        assert!(err.is_bad_input() && err.to_string().contains("FNO Darcy"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);

        let native = native(dir.path());
        for bad in ["", "a/b", ".hidden"] {
            assert!(matches!(write_check(&native, bad, &record), Err(DatasetError::Invalid { .. })), "{bad:?}");
        }
        assert!(matches!(write_check(&dir.path().join("none.h5"), "x", &record), Err(DatasetError::NotFound { .. })));
    }
}
