//! `fieldflow merge -o OUT SHARD...`: join the shard files of a sharded `datagen` run, in order,
//! into one file identical to what an unsharded run writes.

use anyhow::{Context, Result};
use fieldflow_datasets::{FieldReader, FieldWriter, FileSpec, WriterOptions};

use super::{BadInput, progress};
use crate::cli::{GlobalOpts, MergeOpts};

pub fn run(opts: &MergeOpts, global: &GlobalOpts) -> Result<()> {
    let readers = opts.inputs.iter().map(FieldReader::open).collect::<Result<Vec<_>, _>>()?;
    let first = &readers[0];
    for (reader, path) in readers.iter().zip(&opts.inputs).skip(1) {
        let same = reader.metadata() == first.metadata()
            && reader.grid() == first.grid()
            && reader.dtype() == first.dtype()
            && reader.time() == first.time()
            && reader.has_coefficients() == first.has_coefficients();
        if !same {
            return Err(BadInput(format!(
                "{} does not match {}: shards must come from the same config (metadata, grid, dtype, times)",
                path.display(),
                opts.inputs[0].display()
            ))
            .into());
        }
    }
    let mut spec = FileSpec::new(first.metadata().clone(), first.grid().clone(), first.dtype());
    if let Some(time) = first.time() {
        spec = spec.with_time(time.to_vec());
    }
    let mut writer =
        FieldWriter::create(&opts.output, spec, &WriterOptions { force: opts.force, ..WriterOptions::default() })?;
    let total: usize = readers.iter().map(FieldReader::len).sum();
    let bar = progress::bar(total as u64, "merging", global.quiet);
    let chunk = 64;
    for (reader, path) in readers.iter().zip(&opts.inputs) {
        let mut start = 0;
        while start < reader.len() {
            let end = (start + chunk).min(reader.len());
            let fields = reader.read_range(start..end)?;
            let coefficients =
                if reader.has_coefficients() { Some(reader.read_coefficients_range(start..end)?) } else { None };
            writer
                .append(fields.view(), coefficients.as_ref().map(|c| c.view()))
                .with_context(|| format!("merging {}", path.display()))?;
            if reader.time().is_some() {
                writer.append_trajectories(reader.read_trajectories_range(start..end)?.view())?;
            }
            bar.inc((end - start) as u64);
            start = end;
        }
    }
    bar.finish_and_clear();
    let written = writer.finish()?;
    println!("merged {} shards, {} samples, into {}", readers.len(), written.samples, written.path.display());
    Ok(())
}
