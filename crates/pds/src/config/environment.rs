//! The variables in force: the process environment over an env file.

use std::collections::BTreeMap;
use std::path::Path;

use crate::env_file;
use crate::error::Error;

/// The variables in force: the process environment over an optional env
/// file. Empty values count as unset, as in the reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The process environment over the env file at `env_file`, if any
    /// (values already in the process environment win).
    pub fn load(env_file: Option<&Path>) -> Result<Environment, Error> {
        let file = match env_file {
            Some(path) => env_file::read(path)?,
            None => Vec::new(),
        };
        Ok(Environment::layered(file, std::env::vars()))
    }

    /// `process` over `file`: a name set in both takes its `process` value
    /// (an empty `process` value counts as unset and leaves the file's).
    pub fn layered(
        file: impl IntoIterator<Item = (String, String)>,
        process: impl IntoIterator<Item = (String, String)>,
    ) -> Environment {
        let mut vars: BTreeMap<String, String> = file.into_iter().collect();
        vars.extend(process.into_iter().filter(|(_, v)| !v.trim().is_empty()));
        Environment { vars }
    }

    /// An environment of exactly these pairs.
    #[cfg(test)]
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Environment {
        Environment::layered(
            pairs.into_iter().map(|(k, v)| (k.into(), v.into())),
            std::iter::empty(),
        )
    }

    /// The value of `name`, trimmed; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Names of the `PDS_*` variables that are set (non-empty).
    pub fn pds_names(&self) -> impl Iterator<Item = &str> {
        self.vars
            .iter()
            .filter(|(k, v)| k.starts_with("PDS_") && !v.trim().is_empty())
            .map(|(k, _)| k.as_str())
    }
}
