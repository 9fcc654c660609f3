//! `fieldflow import SRC -o DST`: convert an upstream file (PDEBench, FNO `.mat` v7.3) into the
//! native layout with its XDMF sidecar.

use anyhow::Result;
use fieldflow_datasets::{Dtype, ImportOptions, SourceFormat, WriterOptions, import};

use super::BadInput;
use crate::cli::ImportOpts;

pub fn run(opts: &ImportOpts) -> Result<()> {
    let format = match &opts.format {
        None => None,
        Some(name) => Some(name.parse::<SourceFormat>().map_err(|e| BadInput(format!("--format {name}: {e}")))?),
    };
    let dtype: Dtype = opts.dtype.parse().map_err(|e| BadInput(format!("--dtype: {e}")))?;
    if let Some(level) = opts.gzip
        && level > 9
    {
        return Err(BadInput(format!("--gzip {level}: must be between 0 and 9")).into());
    }
    let options = ImportOptions {
        format,
        dtype,
        writer: WriterOptions { gzip: opts.gzip, force: opts.force, ..WriterOptions::default() },
        batch_size: None,
        limit: opts.limit,
    };
    let written = import(&opts.input, &opts.output, &options)?;
    println!(
        "imported {} samples from {} into {} (ParaView: {})",
        written.samples,
        opts.input.display(),
        written.path.display(),
        written.xdmf.display()
    );
    Ok(())
}
