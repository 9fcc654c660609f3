//! The marker of errors in what the user supplied.

/// An error in what the user supplied (flag, config key, file) that is not one of the library
/// error types; the command line exits with code 2 for it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);
