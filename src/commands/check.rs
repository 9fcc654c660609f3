//! `fieldflow check FILE`: how well the fields of a data file obey their physics; the checks
//! themselves are [`crate::check`].
//!
//! The check is inferred from the file's metadata (or forced with `--pde` / `--constraint`):
//!
//! - Navier–Stokes / Kolmogorov files with velocity channels `u`, `v`: the spectral divergence of
//!   every velocity field ([`divergence_residual`]); the judged value is the scale-free relative
//!   divergence `‖∇·u‖₂ / ‖∇u‖_F`.
//! - Darcy files with coefficients `a` and solution `u`: the discrete Darcy residual
//!   ([`DarcyOperator::residual_summary`]) with a constant forcing `--forcing` (default 1); the
//!   judged value is `‖A(a)u − f‖₂ / ‖f‖₂`.
//! - Anything else (e.g. vorticity-only files): only finiteness is checked.
//!
//! Every file is also checked for non-finite values; a sample holding one gets an infinite
//! residual. Exit code 3 when `--max-residual X` is given and some sample's judged residual
//! exceeds `X`.
//!
//! With `--write` the per-sample judged residuals, their max and mean are also stored in the
//! file's `/checks/<check>` group ([`fieldflow_datasets::checks`]); only native files are written.

use std::io::Write;

use anyhow::{Context, Result};
use fieldflow_datasets::checks::{CheckRecord, write_check};
use fieldflow_datasets::{SourceFormat, open_source};
use serde_json::json;

use super::BadInput;
use crate::check::{Checker, Kind, describe};
use crate::cli::CheckOpts;
use crate::metrics::ErrorSummary;

pub fn run(opts: &CheckOpts) -> Result<()> {
    let path = &opts.file;
    let source = open_source(path).map_err(|e| BadInput(format!("cannot read {}: {e}", path.display())))?;
    if opts.write && source.format() != SourceFormat::Native {
        return Err(BadInput(format!(
            "{}: --write stores the report in the file, but this is {}, not a fieldflow file; upstream files are \
             never modified (import it with `fieldflow import` first)",
            path.display(),
            source.format().description()
        ))
        .into());
    }
    if let Some(limit) = opts.max_residual
        && (limit.is_nan() || limit < 0.0)
    {
        // NaN compares false with everything and would switch the gate off.
        return Err(BadInput(format!(
            "--max-residual {limit}: must be a number ≥ 0 (inf: only non-finite samples fail)"
        ))
        .into());
    }
    let checker = Checker::new(source.as_ref(), opts.pde.as_deref(), opts.constraint.as_deref(), opts.forcing)?;
    let kind = checker.kind;
    let (forcing, forcing_source) = (checker.forcing, checker.forcing_source);
    let meta = source.metadata().clone();
    let n = source.len();
    if n == 0 {
        return Err(BadInput(format!("{} holds no samples", path.display())).into());
    }
    let (values, sign) = checker.run_source(source.as_ref(), n)?;
    // HDF5 cannot reopen the file read-write while this read-only handle is open.
    drop(source);
    let relative = ErrorSummary::from_values(values.iter().map(|v| v.0).collect())?;
    let absolute = ErrorSummary::from_values(values.iter().map(|v| v.1).collect())?;
    let non_finite = values.iter().filter(|v| v.0.is_infinite()).count();
    // Non-finite samples exceed every limit, `inf` included.
    let exceeded =
        opts.max_residual.is_some_and(|limit| non_finite > 0 || relative.max.is_nan() || relative.max > limit);
    let (measure, abs_measure) = kind.measures();
    let written = if opts.write {
        let record = CheckRecord::new(kind.name(), measure, relative.per_sample.clone());
        write_check(path, kind.name(), &record)
            .with_context(|| format!("storing the {} report in {}", kind.name(), path.display()))?;
        Some(format!("/checks/{}", kind.name()))
    } else {
        None
    };
    if opts.json {
        let summary = |e: &ErrorSummary| json!({"max": e.max, "mean": e.mean, "worst": e.worst()});
        let value = json!({
            "file": path.display().to_string(),
            "pde": meta.pde,
            "check": kind.name(),
            "forcing": matches!(kind, Kind::Darcy { .. }).then(|| describe(forcing)),
            "samples": n,
            "non_finite_samples": non_finite,
            "nonpositive_coefficient_samples": sign.map(|s| s.0),
            "coefficient_min": sign.map(|s| s.1),
            "relative": summary(&relative),
            "absolute": summary(&absolute),
            "per_sample_relative": relative.per_sample,
            "per_sample_absolute": absolute.per_sample,
            "max_residual": opts.max_residual,
            "exceeded": exceeded,
            "written": written,
        });
        println!("{value:#}");
    } else {
        println!("file      {}", path.display());
        println!("pde       {}", if meta.pde.is_empty() { "(unknown)" } else { &meta.pde });
        println!("samples   {n}");
        println!("finite    {} of {n} samples", n - non_finite);
        if let Some((count, min)) = sign {
            println!("a > 0     {} of {n} samples (min a = {min:.4})", n - count);
        }
        match kind {
            Kind::Finite => println!(
                "check     nothing to check except finiteness (no velocity u, v or Darcy a, u channels; \
                 channels: {:?}; use --pde or --constraint to force a check)",
                meta.channels
            ),
            _ => {
                if let Kind::Darcy { .. } = kind {
                    println!(
                        "check     darcy (-div(a grad u) = f with f = {}, from {forcing_source})",
                        describe(forcing)
                    );
                } else {
                    println!("check     divergence-free");
                }
                println!("{:<40} {:>12} {:>12} {:>8}", "residual", "max", "mean", "worst");
                println!("{:<40} {:>12.3e} {:>12.3e} {:>8}", measure, relative.max, relative.mean, relative.worst());
                println!(
                    "{:<40} {:>12.3e} {:>12.3e} {:>8}",
                    abs_measure,
                    absolute.max,
                    absolute.mean,
                    absolute.worst()
                );
            }
        }
        if let Some(group) = &written {
            println!("written   {group} in {}", path.display());
        }
    }
    if exceeded {
        let limit = opts.max_residual.unwrap_or_default();
        std::io::stdout().flush().ok();
        return Err(super::ResidualExceeded(format!(
            "{}: residual {:.3e} of sample {} exceeds --max-residual {limit:e}",
            path.display(),
            relative.max,
            relative.worst()
        ))
        .into());
    }
    Ok(())
}
