//! Robust statistics for the flag rules, in exact decimals.

use rust_decimal::Decimal;

/// The median of `values` (the mean of the two middle ones for an even count); `None` when empty.
pub(super) fn median(values: &[Decimal]) -> Option<Decimal> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / Decimal::TWO
    })
}

/// A robust standard deviation: 1.4826 × the median absolute deviation from `centre` (equal to
/// the standard deviation for normally distributed values, and unmoved by a few outliers).
pub(super) fn robust_spread(values: &[Decimal], centre: Decimal) -> Decimal {
    let deviations: Vec<Decimal> = values.iter().map(|v| (*v - centre).abs()).collect();
    median(&deviations).unwrap_or_default() * Decimal::new(14826, 4)
}

/// A decimal rounded to `dp` places, as text (for evidence).
pub(super) fn text(value: Decimal, dp: u32) -> String {
    value
        .round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .normalize()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn median_and_spread() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[dec!(3), dec!(1), dec!(2)]), Some(dec!(2)));
        assert_eq!(
            median(&[dec!(4), dec!(1), dec!(2), dec!(3)]),
            Some(dec!(2.5))
        );
        // Deviations from 2: 1, 0, 1, 98 → median 1.
        assert_eq!(
            robust_spread(&[dec!(1), dec!(2), dec!(3), dec!(100)], dec!(2)),
            dec!(1.4826)
        );
        assert_eq!(text(dec!(2.345), 2), "2.35");
        assert_eq!(text(dec!(10.00), 2), "10");
    }
}
