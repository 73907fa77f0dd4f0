//! Scores and weights: exact decimals with their invariants.
//!
//! All arithmetic uses [`rust_decimal::Decimal`] (96-bit mantissa, 28 significant digits); binary
//! floating point never appears. Intermediate quotients such as ⅓ are carried to 28 significant
//! digits and rounded only when a score is *published*: see [`Score::published`].

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The number of decimals of a published score.
pub const PUBLISHED_DECIMALS: u32 = 2;

/// Before publishing rounding, an exact score is first rounded to this many decimals.
///
/// This removes the residue (≈ 10⁻²⁶) that 28-digit division leaves on values whose exact
/// expansion is finite, so that an exact tie such as 87.995 computed through ⅓ and ⅔ still rounds
/// up to 88.00. A genuine (rational) score with the small denominators a methodology produces can
/// never lie within 10⁻¹⁸ of a tie without being one, so this step never changes a correct result.
pub const NOISE_GUARD_DECIMALS: u32 = 18;

/// An exact score between 0 and 100 inclusive, not yet rounded for publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Score(Decimal);

/// A score rounded to [`PUBLISHED_DECIMALS`] decimals half-up: the figure that is published,
/// compared with band bounds, ranked and averaged into entity scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct PublishedScore(Decimal);

/// A positive weight (of a dimension, variable, indicator or score component).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Weight(Decimal);

/// A value that is not a valid score.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    /// Below 0 or above 100.
    #[error("score must be between 0 and 100, got {0}")]
    OutOfRange(Decimal),
    /// More decimals than a published score has.
    #[error("a published score has at most 2 decimals, got {0}")]
    TooPrecise(Decimal),
}

/// A weight that is zero or negative.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("weight must be > 0, got {0}")]
pub struct InvalidWeight(pub Decimal);

/// Rounds half-up (away from zero; scores are never negative) to `dp` decimals.
pub fn round_half_up(value: Decimal, dp: u32) -> Decimal {
    value.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// Rounds an exact value the way published scores are rounded: noise guard, then 2 decimals
/// half-up. The result always carries exactly two decimals (`88` becomes `88.00`).
pub fn round_published(value: Decimal) -> Decimal {
    let mut rounded = round_half_up(
        round_half_up(value, NOISE_GUARD_DECIMALS),
        PUBLISHED_DECIMALS,
    );
    rounded.rescale(PUBLISHED_DECIMALS);
    rounded
}

fn in_range(value: Decimal) -> bool {
    value >= Decimal::ZERO && value <= Decimal::ONE_HUNDRED
}

impl Score {
    /// Zero.
    pub const ZERO: Score = Score(Decimal::ZERO);
    /// One hundred.
    pub const MAX: Score = Score(Decimal::ONE_HUNDRED);

    /// Accepts a value within 0–100.
    pub fn new(value: Decimal) -> Result<Self, ScoreError> {
        if in_range(value) {
            Ok(Self(value))
        } else {
            Err(ScoreError::OutOfRange(value))
        }
    }

    /// Clamps a computed value into 0–100. Used only where the arithmetic guarantees the range
    /// up to the last digit of a 28-digit quotient.
    pub(crate) fn saturating(value: Decimal) -> Self {
        Self(value.clamp(Decimal::ZERO, Decimal::ONE_HUNDRED))
    }

    /// The exact value.
    pub fn value(self) -> Decimal {
        self.0
    }

    /// The published figure: rounded to 2 decimals, half-up (see [`round_published`]).
    pub fn published(self) -> PublishedScore {
        PublishedScore(round_published(self.0))
    }
}

impl PublishedScore {
    /// Accepts an already-published figure: 0–100 with at most 2 decimals (e.g. an imported
    /// score from an earlier cycle). The stored value is rescaled to exactly 2 decimals.
    pub fn new(value: Decimal) -> Result<Self, ScoreError> {
        if !in_range(value) {
            return Err(ScoreError::OutOfRange(value));
        }
        let mut normal = value.normalize();
        if normal.scale() > PUBLISHED_DECIMALS {
            return Err(ScoreError::TooPrecise(value));
        }
        normal.rescale(PUBLISHED_DECIMALS);
        Ok(Self(normal))
    }

    /// The value, with exactly two decimals.
    pub fn value(self) -> Decimal {
        self.0
    }

    /// The score in Indonesian number format, as printed on certificates: `93,71`.
    pub fn to_indonesian(self) -> String {
        self.0.to_string().replace('.', ",")
    }
}

impl Weight {
    /// Accepts a strictly positive value.
    pub fn new(value: Decimal) -> Result<Self, InvalidWeight> {
        if value > Decimal::ZERO {
            Ok(Self(value))
        } else {
            Err(InvalidWeight(value))
        }
    }

    /// The value.
    pub fn value(self) -> Decimal {
        self.0
    }
}

macro_rules! decimal_newtype_conversions {
    ($ty:ty, $err:ty) => {
        impl TryFrom<Decimal> for $ty {
            type Error = $err;
            fn try_from(value: Decimal) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }
        impl From<$ty> for Decimal {
            fn from(value: $ty) -> Self {
                value.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

decimal_newtype_conversions!(Score, ScoreError);
decimal_newtype_conversions!(PublishedScore, ScoreError);
decimal_newtype_conversions!(Weight, InvalidWeight);

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn score_range_is_inclusive() {
        assert!(Score::new(dec!(0)).is_ok());
        assert!(Score::new(dec!(100)).is_ok());
        assert!(Score::new(dec!(-0.0001)).is_err());
        assert!(Score::new(dec!(100.0001)).is_err());
    }

    #[test]
    fn publishing_rounds_half_up_to_two_decimals() {
        let p = |d: Decimal| Score::new(d).unwrap().published().value().to_string();
        assert_eq!(p(dec!(73.3333333)), "73.33");
        assert_eq!(p(dec!(87.995)), "88.00");
        assert_eq!(p(dec!(87.994999)), "87.99");
        assert_eq!(p(dec!(0.005)), "0.01");
        assert_eq!(p(dec!(0.004999)), "0.00");
        assert_eq!(p(dec!(99.995)), "100.00");
        assert_eq!(p(dec!(88)), "88.00");
    }

    #[test]
    fn noise_guard_rounds_ties_reached_through_repeating_quotients() {
        // 87.995 computed as 263.985 / 3 through a ⅓ carried to 28 digits.
        let third = Decimal::ONE / dec!(3);
        let value = dec!(263.985) * third;
        assert_ne!(
            value,
            dec!(87.995),
            "the quotient is inexact at the 28th digit"
        );
        assert_eq!(Score::new(value).unwrap().published().value(), dec!(88.00));
    }

    #[test]
    fn published_score_refuses_more_than_two_decimals() {
        assert_eq!(
            PublishedScore::new(dec!(93.7)).unwrap().value().to_string(),
            "93.70"
        );
        assert_eq!(
            PublishedScore::new(dec!(93.710))
                .unwrap()
                .value()
                .to_string(),
            "93.71"
        );
        assert!(matches!(
            PublishedScore::new(dec!(93.715)),
            Err(ScoreError::TooPrecise(_))
        ));
        assert!(matches!(
            PublishedScore::new(dec!(100.01)),
            Err(ScoreError::OutOfRange(_))
        ));
    }

    #[test]
    fn indonesian_number_format_uses_a_decimal_comma() {
        assert_eq!(
            PublishedScore::new(dec!(93.71)).unwrap().to_indonesian(),
            "93,71"
        );
        assert_eq!(
            PublishedScore::new(dec!(100)).unwrap().to_indonesian(),
            "100,00"
        );
        assert_eq!(
            PublishedScore::new(dec!(5)).unwrap().to_indonesian(),
            "5,00"
        );
    }

    #[test]
    fn weights_are_strictly_positive() {
        assert!(Weight::new(dec!(0.01)).is_ok());
        assert!(Weight::new(dec!(0)).is_err());
        assert!(Weight::new(dec!(-1)).is_err());
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<Score>("\"101\"").is_err());
        assert_eq!(
            serde_json::from_str::<Score>("\"73.5\"").unwrap().value(),
            dec!(73.5)
        );
        assert!(serde_json::from_str::<Weight>("\"0\"").is_err());
    }
}
