//! The training log (`train_log.csv` in the run directory) and the progress bar.
//!
//! The log has the header [`HEADER`]: one row per logging point with the step (completed
//! updates), the learning rate of the last update, the mean training loss and mean global gradient
//! norm (before clipping) since the previous row, the validation losses of the trained and EMA
//! weights when evaluated at that step (empty otherwise), the wall-clock seconds since the run
//! started (accumulated over resumptions) and, for PBFM runs, the mean residual loss since the
//! previous row (empty otherwise). Logs of earlier versions, without the last column
//! ([`HEADER_V1`]), are read as well (and rewritten with the new header on resumption).
//!
//! Rows are appended with one `write` of a complete line each, so readers never see half a row
//! (short of a crash, after which [`read_log`] ignores an unterminated last line). On resumption
//! the file is rewritten atomically without the rows after the checkpoint, which the resumed run
//! produces again.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{TrainError, write_atomic};

/// The log's file name inside the run directory.
pub const LOG_FILE: &str = "train_log.csv";

/// The log's header line.
pub const HEADER: &str = "step,lr,train_loss,val_loss,grad_norm,seconds,ema_val_loss,residual_loss";

/// The header of logs written before the `residual_loss` column existed.
pub const HEADER_V1: &str = "step,lr,train_loss,val_loss,grad_norm,seconds,ema_val_loss";

/// One row of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    /// Completed updates.
    pub step: u64,
    /// The learning rate of the last update.
    pub lr: f64,
    /// The mean training loss since the previous row.
    pub train_loss: f64,
    /// The validation loss of the trained weights, when evaluated at this step.
    pub val_loss: Option<f64>,
    /// The mean global gradient norm (before clipping) since the previous row.
    pub grad_norm: f64,
    /// Seconds since the run started.
    pub seconds: f64,
    /// The validation loss of the EMA weights, when evaluated at this step.
    pub ema_val_loss: Option<f64>,
    /// The mean PBFM residual loss since the previous row (PBFM runs only).
    pub residual_loss: Option<f64>,
}

impl LogRow {
    fn to_line(&self) -> String {
        let opt = |v: Option<f64>| v.map(|v| format!("{v:e}")).unwrap_or_default();
        format!(
            "{},{:e},{:e},{},{:e},{:.3},{},{}\n",
            self.step,
            self.lr,
            self.train_loss,
            opt(self.val_loss),
            self.grad_norm,
            self.seconds,
            opt(self.ema_val_loss),
            opt(self.residual_loss)
        )
    }

    /// Parses a row of `columns` fields (7: [`HEADER_V1`], 8: [`HEADER`]).
    fn parse(line: &str, columns: usize) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != columns {
            return None;
        }
        let num = |s: &str| s.trim().parse::<f64>().ok();
        let opt = |s: &str| if s.trim().is_empty() { Some(None) } else { num(s).map(Some) };
        Some(Self {
            step: f[0].trim().parse().ok()?,
            lr: num(f[1])?,
            train_loss: num(f[2])?,
            val_loss: opt(f[3])?,
            grad_norm: num(f[4])?,
            seconds: num(f[5])?,
            ema_val_loss: opt(f[6])?,
            residual_loss: match f.get(7) {
                Some(s) => opt(s)?,
                None => None,
            },
        })
    }
}

/// Reads a log written by [`CsvLog`]; an unterminated last line (an interrupted write) is
/// ignored.
///
/// # Errors
/// [`TrainError::Io`] if the file cannot be read, [`TrainError::Checkpoint`] naming the line of a
/// malformed row or a wrong header.
pub fn read_log(path: &Path) -> Result<Vec<LogRow>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    let mut lines = complete.lines();
    let columns = match lines.next() {
        Some(h) if h.trim() == HEADER => 8,
        Some(h) if h.trim() == HEADER_V1 => 7,
        None => return Ok(Vec::new()),
        Some(h) => return Err(TrainError::checkpoint(path, format!("unexpected header `{h}`, expected `{HEADER}`"))),
    };
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            LogRow::parse(l, columns)
                .ok_or_else(|| TrainError::checkpoint(path, format!("malformed row {}: `{l}`", i + 2)))
        })
        .collect()
}

/// The training log: rows kept in memory and, for runs with a directory, appended to
/// `train_log.csv`.
#[derive(Debug, Clone, Default)]
pub struct CsvLog {
    path: Option<PathBuf>,
    rows: Vec<LogRow>,
}

impl CsvLog {
    /// A log kept in memory only.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// The log of `run_dir`: the rows of an existing log up to step `through` (all of them when
    /// `None`; none with `Some(0)`, for a fresh run), rewritten atomically, or a new log with its
    /// header.
    ///
    /// # Errors
    /// As [`read_log`], and [`TrainError::Io`] if the file cannot be written.
    pub fn open(run_dir: &Path, through: Option<u64>) -> Result<Self, TrainError> {
        let path = run_dir.join(LOG_FILE);
        let mut rows = if path.exists() { read_log(&path)? } else { Vec::new() };
        if let Some(step) = through {
            rows.retain(|r| r.step <= step);
        }
        let mut text = format!("{HEADER}\n");
        rows.iter().for_each(|r| text.push_str(&r.to_line()));
        write_atomic(&path, text.as_bytes())?;
        Ok(Self { path: Some(path), rows })
    }

    /// Appends a row (one write of the whole line).
    ///
    /// # Errors
    /// [`TrainError::Io`] if the file cannot be written.
    pub fn push(&mut self, row: LogRow) -> Result<(), TrainError> {
        if let Some(path) = &self.path {
            let line = row.to_line();
            let mut file = OpenOptions::new().append(true).open(path).map_err(|e| TrainError::io(path, e))?;
            file.write_all(line.as_bytes()).map_err(|e| TrainError::io(path, e))?;
        }
        self.rows.push(row);
        Ok(())
    }

    /// The rows so far (including those of earlier sessions of a resumed run).
    pub fn rows(&self) -> &[LogRow] {
        &self.rows
    }

    /// The file, for logs with a run directory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// The training progress bar on stderr, at `position` of `total` steps: loss in the message,
/// steps per second and ETA; hidden with `quiet` or when stderr is not a terminal.
pub fn progress_bar(total: u64, position: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template = "{spinner} train [{bar:30}] {pos}/{len} {msg} ({per_sec}, ETA {eta})";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_position(position);
    bar.reset_eta();
    bar
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(step: u64, val: Option<f64>) -> LogRow {
        LogRow {
            step,
            lr: 1e-3 / step as f64,
            train_loss: 0.5 + step as f64,
            val_loss: val,
            grad_norm: 2.25,
            seconds: 0.125 * step as f64,
            ema_val_loss: val.map(|v| v / 2.0),
            residual_loss: step.is_multiple_of(20).then_some(0.0625 * step as f64),
        }
    }

    #[test]
    fn rows_round_trip_and_resumption_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = CsvLog::open(dir.path(), None).unwrap();
        let rows = vec![row(10, None), row(20, Some(0.3125)), row(30, None)];
        for r in &rows {
            log.push(r.clone()).unwrap();
        }
        let path = dir.path().join(LOG_FILE);
        assert_eq!(read_log(&path).unwrap(), rows);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("step,lr,train_loss,val_loss,grad_norm,seconds,ema_val_loss,residual_loss\n10,1e-4,"),
            "{text}"
        );
        // An interrupted append leaves an unterminated line, which readers ignore.
        std::fs::write(&path, format!("{text}40,1e-3,0.")).unwrap();
        assert_eq!(read_log(&path).unwrap(), rows);
        // Resuming from step 20 drops the later rows.
        let resumed = CsvLog::open(dir.path(), Some(20)).unwrap();
        assert_eq!(resumed.rows(), &rows[..2]);
        assert_eq!(read_log(&path).unwrap(), rows[..2]);
        std::fs::write(&path, "step,loss\n1,2\n").unwrap();
        assert!(matches!(read_log(&path), Err(TrainError::Checkpoint { .. })));
    }

    #[test]
    fn logs_without_the_residual_column_are_read_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let old = format!("{HEADER_V1}\n10,1e-3,5e-1,,2.25e0,1.250,\n20,1e-3,4e-1,3e-1,2e0,2.500,1.5e-1\n");
        std::fs::write(&path, old).unwrap();
        let rows = read_log(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].val_loss, rows[1].ema_val_loss, rows[1].residual_loss), (Some(0.3), Some(0.15), None));
        // A row of the wrong width for its header is malformed.
        std::fs::write(&path, format!("{HEADER_V1}\n10,1e-3,5e-1,,2.25e0,1.250,,\n")).unwrap();
        assert!(matches!(read_log(&path), Err(TrainError::Checkpoint { .. })));
        std::fs::write(&path, format!("{HEADER_V1}\n10,1e-3,5e-1,,2.25e0,1.250,\n")).unwrap();
        // Resuming rewrites the log with the current header, rows unchanged.
        let log = CsvLog::open(dir.path(), Some(10)).unwrap();
        assert_eq!(log.rows().len(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&format!("{HEADER}\n10,")), "{text}");
        assert_eq!(read_log(&path).unwrap(), log.rows());
    }
}
