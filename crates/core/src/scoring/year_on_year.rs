//! Rule 8: year-on-year delta and band change.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::methodology::{Band, BandTable};
use crate::score::PublishedScore;

/// How the band moved since the previous cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BandMovement {
    /// A better band (or zone) than last year.
    Up,
    /// The same band (or zone).
    Same,
    /// A worse band (or zone).
    Down,
    /// The two band tables cannot be compared (different grades and no zones in one of them).
    Incomparable,
}

/// A result compared with the previous cycle's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct YearOnYear {
    /// Previous published score.
    pub previous_score: PublishedScore,
    /// Previous band.
    pub previous_band: Band,
    /// Current minus previous (exact; both have 2 decimals).
    pub delta: Decimal,
    /// Band movement.
    pub movement: BandMovement,
}

/// Compares a current result with the previous cycle's, each graded by its own band table.
///
/// Bands are compared by position when both cycles use the same grade codes in the same order
/// (e.g. A–E in 2022–2024 and 2025), otherwise by zone when both have zones (e.g. 2021's zones
/// against 2022's), otherwise the movement is [`BandMovement::Incomparable`].
pub fn year_on_year(
    previous: PublishedScore,
    previous_table: &BandTable,
    current: PublishedScore,
    current_table: &BandTable,
) -> YearOnYear {
    let previous_band = previous_table.band_of(previous).clone();
    let current_band = current_table.band_of(current);
    let same_codes = previous_table.bands().len() == current_table.bands().len()
        && previous_table
            .bands()
            .iter()
            .zip(current_table.bands())
            .all(|(a, b)| a.code == b.code);
    let movement = if same_codes {
        let before = previous_table.position(&previous_band.code);
        let now = current_table.position(&current_band.code);
        // Position 0 is the best band, so a smaller position is a move up.
        match now.cmp(&before) {
            std::cmp::Ordering::Less => BandMovement::Up,
            std::cmp::Ordering::Equal => BandMovement::Same,
            std::cmp::Ordering::Greater => BandMovement::Down,
        }
    } else {
        match (previous_band.zone, current_band.zone) {
            (Some(before), Some(now)) => match now.cmp(&before) {
                std::cmp::Ordering::Greater => BandMovement::Up,
                std::cmp::Ordering::Equal => BandMovement::Same,
                std::cmp::Ordering::Less => BandMovement::Down,
            },
            _ => BandMovement::Incomparable,
        }
    };
    YearOnYear {
        previous_score: previous,
        previous_band,
        delta: current.value() - previous.value(),
        movement,
    }
}
