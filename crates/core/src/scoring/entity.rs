//! Rule 4 (entity score from its units) and rule 6 (bands), with the follow-up rule.

use serde::{Deserialize, Serialize};

use super::mean;
use super::unit::UnitScore;
use crate::cycle::CycleYear;
use crate::methodology::{Aggregation, Band, Methodology, Zone};
use crate::score::{PublishedScore, Score};

/// Why an entity has no score.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityScoreError {
    /// None of its units has a score.
    #[error("the entity has no scored unit")]
    NoScoredUnit,
}

/// Mean of published scores, published again (rounded half-up to 2 decimals).
pub fn mean_published(scores: &[PublishedScore]) -> Result<PublishedScore, EntityScoreError> {
    if scores.is_empty() {
        return Err(EntityScoreError::NoScoredUnit);
    }
    Ok(Score::saturating(mean(scores.iter().map(|s| s.value()))).published())
}

/// An entity's published score from its units' results, by the methodology's aggregation rule:
/// the mean of the units' published scores, or (product-scored methodologies) the mean of all
/// products' published scores.
pub fn aggregate_entity(
    m: &Methodology,
    units: &[&UnitScore],
) -> Result<PublishedScore, EntityScoreError> {
    let scores: Vec<PublishedScore> = match m.aggregation {
        Aggregation::MeanOfUnits => units.iter().map(|u| u.published).collect(),
        Aggregation::MeanOfProducts => units
            .iter()
            .flat_map(|u| u.sheets.iter().map(|s| s.published))
            .collect(),
    };
    mean_published(&scores)
}

/// Whether an entity followed up the Ombudsman's earlier findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpStatus {
    /// Findings and recommendations addressed to the entity.
    pub findings: u32,
    /// Of which followed up.
    pub followed_up: u32,
}

impl FollowUpStatus {
    /// All findings followed up (vacuously true without findings).
    pub fn is_complete(self) -> bool {
        self.followed_up >= self.findings
    }
}

/// A grade: the band of a published score, with the follow-up rule applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grade {
    /// Band code, e.g. `A`.
    pub code: String,
    /// Label as published, e.g. `Kualitas Tertinggi` or `Kualitas Sedang Tanpa Maladministrasi`.
    pub label: String,
    /// Colour zone, where the methodology has zones.
    pub zone: Option<Zone>,
    /// Summary category, e.g. `Baik`.
    pub category: Option<String>,
    /// Whether the result earns an award (and so a certificate): its band is at or above the
    /// methodology's `award_minimum_band`, and, where the follow-up rule applies, every finding
    /// was followed up.
    pub award_eligible: bool,
}

impl Grade {
    /// The band behind this grade (code, label without suffix, zone, category).
    pub fn from_band(band: &Band) -> Self {
        Self {
            code: band.code.clone(),
            label: band.label.clone(),
            zone: band.zone,
            category: band.category.clone(),
            award_eligible: true,
        }
    }
}

/// The grade of a published score in a cycle year. `follow_up` is the entity's follow-up of
/// earlier findings (`None` for units, or when no findings were addressed to it, which counts
/// as complete).
pub fn grade(
    m: &Methodology,
    year: CycleYear,
    score: PublishedScore,
    follow_up: Option<FollowUpStatus>,
) -> Grade {
    let band = m.bands.band_of(score);
    let mut g = Grade::from_band(band);
    g.award_eligible = m.bands.at_least(&band.code, m.award_minimum_band());
    if let Some(rule) = m.follow_up.as_ref().filter(|r| year >= r.applies_from) {
        let complete = follow_up.is_none_or(FollowUpStatus::is_complete);
        if rule.award_requires_complete && !complete {
            g.award_eligible = false;
        }
        if let Some(suffix) = rule
            .complete_suffix
            .as_ref()
            .filter(|_| complete && follow_up.is_some())
        {
            g.label = format!("{} {suffix}", g.label);
        }
    }
    g
}
