//! The methodologies shipped with kepatuhan, embedded in the binary.

use super::{LoadError, Methodology};
use crate::cycle::CycleYear;

/// A shipped methodology file.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinFile {
    /// The file name under `methodologies/`.
    pub file: &'static str,
    /// The TOML text.
    pub text: &'static str,
}

/// Every shipped methodology, oldest first.
pub const FILES: [BuiltinFile; 3] = [
    BuiltinFile {
        file: "ori-2021-zones.toml",
        text: include_str!("../../methodologies/ori-2021-zones.toml"),
    },
    BuiltinFile {
        file: "ori-2022-grades.toml",
        text: include_str!("../../methodologies/ori-2022-grades.toml"),
    },
    BuiltinFile {
        file: "ori-2025-opinion.toml",
        text: include_str!("../../methodologies/ori-2025-opinion.toml"),
    },
];

/// Loads every shipped methodology.
pub fn all() -> Result<Vec<Methodology>, (&'static str, LoadError)> {
    FILES
        .iter()
        .map(|f| Methodology::from_toml(f.text).map_err(|e| (f.file, e)))
        .collect()
}

/// Loads a shipped methodology by code (e.g. `ori-2022`).
pub fn by_code(code: &str) -> Option<Methodology> {
    all().ok()?.into_iter().find(|m| m.code() == code)
}

/// The shipped methodology meant for a cycle year (the latest one whose years cover it).
pub fn for_year(year: CycleYear) -> Option<Methodology> {
    all().ok()?.into_iter().rev().find(|m| m.covers(year))
}
