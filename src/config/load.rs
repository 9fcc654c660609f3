//! Loading TOML job configs: `--set key=value` overrides, unknown-key detection with
//! suggestions, and errors that name the file and the key.
//!
//! A config is read as a TOML table, overrides are applied to the table, the effective table is
//! kept as text (for `--dry-run` and for the `config` attribute of output files), and only then is
//! it deserialised into the job's typed config, whose structs use `#[serde(deny_unknown_fields)]`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use thiserror::Error;

/// Where a config came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source(pub PathBuf);

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

/// A config problem; every message names the file and, where there is one, the key.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {cause}")]
    Io {
        /// The config file.
        path: Source,
        /// The underlying error (in the message, so not a `source`: printed once).
        cause: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path} is not valid TOML: {message}")]
    Syntax {
        /// The config file.
        path: Source,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key that the job does not know.
    #[error("unknown key `{key}` in {path}{}", suggestion.as_ref().map(|s| format!(", did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey {
        /// The config file.
        path: Source,
        /// The full dotted key.
        key: String,
        /// The closest known key at the same level.
        suggestion: Option<String>,
    },
    /// A value of the wrong type or a missing required key.
    #[error("invalid config {path}: `{key}`: {message}")]
    InvalidValue {
        /// The config file.
        path: Source,
        /// The full dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value outside its allowed range (reported by a job's validation).
    #[error("invalid config {path}: `{key}` = {value}: {message}")]
    OutOfRange {
        /// The config file.
        path: Source,
        /// The full dotted key.
        key: String,
        /// The rejected value, as written.
        value: String,
        /// The allowed range.
        message: String,
    },
    /// A malformed `--set` override.
    #[error("invalid --set `{spec}`: {reason}")]
    BadOverride {
        /// The override as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A loaded config: the typed value and the effective TOML text (after overrides).
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The typed config.
    pub value: T,
    /// The effective config as TOML text.
    pub effective: String,
    /// Where it came from.
    pub source: Source,
    /// Earlier spellings that were accepted and rewritten, one message each (print them).
    pub warnings: Vec<String>,
}

/// A rewrite of a config's earlier spellings into its current layout: the messages to print, or
/// `(key, reason)` for a spelling that cannot be rewritten.
pub type Migration = fn(&mut toml::Table) -> Result<Vec<String>, (String, String)>;

/// Reads `path`, applies `overrides` (`section.key=value`, value in TOML syntax or a bare string)
/// and deserialises the result into `T`.
///
/// # Errors
/// [`ConfigError`] naming the file and the key at fault.
pub fn load<T: DeserializeOwned>(path: &Path, overrides: &[String]) -> Result<Loaded<T>, ConfigError> {
    load_migrated(path, overrides, |_| Ok(Vec::new()))
}

/// As [`load`], rewriting earlier spellings with `migrate` after the overrides are applied (so
/// an earlier spelling in `--set` is accepted too).
///
/// # Errors
/// [`ConfigError`] naming the file and the key at fault.
pub fn load_migrated<T: DeserializeOwned>(
    path: &Path,
    overrides: &[String],
    migrate: Migration,
) -> Result<Loaded<T>, ConfigError> {
    let source = Source(path.to_path_buf());
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io { path: source.clone(), cause: e })?;
    from_str_migrated(&text, source, overrides, migrate)
}

/// As [`load`], from TOML text already in memory; `source` names it in messages.
///
/// # Errors
/// [`ConfigError`] naming the source and the key at fault.
pub fn from_str<T: DeserializeOwned>(
    text: &str,
    source: Source,
    overrides: &[String],
) -> Result<Loaded<T>, ConfigError> {
    from_str_migrated(text, source, overrides, |_| Ok(Vec::new()))
}

/// As [`from_str`], with a [`Migration`] of earlier spellings.
///
/// # Errors
/// [`ConfigError`] naming the source and the key at fault.
pub fn from_str_migrated<T: DeserializeOwned>(
    text: &str,
    source: Source,
    overrides: &[String],
    migrate: Migration,
) -> Result<Loaded<T>, ConfigError> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax { path: source.clone(), message: e.to_string() })?;
    for spec in overrides {
        apply_override(&mut table, spec)?;
    }
    let warnings = migrate(&mut table).map_err(|(key, message)| ConfigError::InvalidValue {
        path: source.clone(),
        key,
        message,
    })?;
    let effective =
        toml::to_string(&table).map_err(|e| ConfigError::Syntax { path: source.clone(), message: e.to_string() })?;
    let value = deserialize(toml::Value::Table(table), &source)?;
    Ok(Loaded { value, effective, source, warnings })
}

fn deserialize<T: DeserializeOwned>(value: toml::Value, source: &Source) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        classify(source, &path, &message)
    })
}

/// Turns serde's message into an unknown-key or invalid-value error with the full key.
fn classify(source: &Source, path: &str, message: &str) -> ConfigError {
    let prefix = if path == "." || path.is_empty() { String::new() } else { format!("{path}.") };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        // serde lists the expected names as "expected one of `a`, `b`" or "expected `a`".
        let expected: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        // serde_path_to_error includes the unknown field itself in the path; avoid doubling it.
        let key = if path.ends_with(field) { path.to_string() } else { format!("{prefix}{field}") };
        return ConfigError::UnknownKey { path: source.clone(), key, suggestion: suggest(field, &expected) };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return ConfigError::InvalidValue {
            path: source.clone(),
            key: format!("{prefix}{field}"),
            message: "required key is missing".into(),
        };
    }
    ConfigError::InvalidValue {
        path: source.clone(),
        key: path.trim_start_matches('.').to_string(),
        message: message.to_string(),
    }
}

/// The known name closest to `name`, if it is close enough to be a plausible typo.
pub fn suggest(name: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.to_string())
}

/// Applies `section.key=value` to `table`, creating sections as needed.
fn apply_override(table: &mut toml::Table, spec: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::BadOverride { spec: spec.to_string(), reason: reason.to_string() };
    let (key, raw) = spec.split_once('=').ok_or_else(|| bad("expected `section.key=value`"))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("empty key segment"));
    }
    let raw = raw.trim();
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let (last, sections) = parts.split_last().ok_or_else(|| bad("empty key"))?;
    let mut current = table;
    for section in sections {
        let entry = current.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| bad(&format!("`{section}` is a value, not a section")))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// Helper for range checks in a job's `validate`: an [`ConfigError::OutOfRange`] for `key`.
pub fn out_of_range(source: &Source, key: &str, value: impl fmt::Display, message: &str) -> ConfigError {
    ConfigError::OutOfRange {
        path: source.clone(),
        key: key.to_string(),
        value: value.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Solver {
        steps: usize,
        #[serde(default)]
        method: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Job {
        name: String,
        solver: Solver,
    }

    fn src() -> Source {
        Source(PathBuf::from("configs/x.toml"))
    }

    #[test]
    fn loads_and_applies_overrides() {
        let text = "name = \"a\"\n[solver]\nsteps = 4\n";
        let loaded: Loaded<Job> =
            from_str(text, src(), &["solver.steps=20".into(), "solver.method=heun".into()]).unwrap();
        assert_eq!(loaded.value, Job { name: "a".into(), solver: Solver { steps: 20, method: "heun".into() } });
        assert!(loaded.effective.contains("steps = 20"));
        let again: Loaded<Job> = from_str(&loaded.effective, src(), &[]).unwrap();
        assert_eq!(again.value, loaded.value);
    }

    #[test]
    fn unknown_key_names_file_key_and_suggestion() {
        let text = "name = \"a\"\n[solver]\nstpes = 4\n";
        let err = from_str::<Job>(text, src(), &[]).unwrap_err().to_string();
        assert_eq!(err, "unknown key `solver.stpes` in configs/x.toml, did you mean `steps`?");
        let err = from_str::<Job>("nmae = 1\n[solver]\nsteps = 1\n", src(), &[]).unwrap_err().to_string();
        assert_eq!(err, "unknown key `nmae` in configs/x.toml, did you mean `name`?");
        let err =
            from_str::<Job>("name = \"a\"\nzzzzzz = 1\n[solver]\nsteps = 1\n", src(), &[]).unwrap_err().to_string();
        assert_eq!(err, "unknown key `zzzzzz` in configs/x.toml");
    }

    #[test]
    fn wrong_types_missing_keys_and_bad_syntax_are_named() {
        let err = from_str::<Job>("name = \"a\"\n[solver]\nsteps = \"many\"\n", src(), &[]).unwrap_err().to_string();
        assert!(err.starts_with("invalid config configs/x.toml: `solver.steps`:"), "{err}");
        let err = from_str::<Job>("name = \"a\"\n[solver]\n", src(), &[]).unwrap_err().to_string();
        assert_eq!(err, "invalid config configs/x.toml: `solver.steps`: required key is missing");
        let err = from_str::<Job>("name = \n", src(), &[]).unwrap_err().to_string();
        assert!(err.starts_with("configs/x.toml is not valid TOML"), "{err}");
        let err = from_str::<Job>("name = \"a\"\n[solver]\nsteps = 1\n", src(), &["solver.steps".into()]).unwrap_err();
        assert!(matches!(err, ConfigError::BadOverride { .. }));
        let err = from_str::<Job>("name = \"a\"\n[solver]\nsteps = 1\n", src(), &["name.x=1".into()]).unwrap_err();
        assert!(err.to_string().contains("`name` is a value, not a section"));
        let err = load::<Job>(Path::new("/nonexistent/x.toml"), &[]).unwrap_err().to_string();
        assert!(err.starts_with("cannot read config /nonexistent/x.toml"));
    }
}
