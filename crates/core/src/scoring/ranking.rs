//! Rule 7: competition ranking (1, 2, 2, 4) per entity kind, nationally and within a province.

use std::collections::HashMap;

use serde::Serialize;

use crate::entity::EntityKind;
use crate::score::PublishedScore;

/// A position in a ranking: `rank` of `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rank {
    /// 1 is best; equal scores share a rank and the next rank is skipped.
    pub rank: u32,
    /// How many were ranked.
    pub of: u32,
}

/// Competition ranks of published scores (highest first), returned in input order.
///
/// ```
/// use kepatuhan_core::PublishedScore;
/// use kepatuhan_core::scoring::rank;
/// use rust_decimal::Decimal;
///
/// let scores: Vec<PublishedScore> = [95, 90, 90, 80]
///     .map(|s| PublishedScore::new(Decimal::from(s)).unwrap())
///     .into();
/// let ranks: Vec<u32> = rank(&scores).iter().map(|r| r.rank).collect();
/// assert_eq!(ranks, [1, 2, 2, 4]);
/// ```
pub fn rank(scores: &[PublishedScore]) -> Vec<Rank> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[b].cmp(&scores[a]));
    let of = u32::try_from(scores.len()).unwrap_or(u32::MAX);
    let mut ranks = vec![Rank { rank: 0, of }; scores.len()];
    let mut current = 0u32;
    for (position, &i) in order.iter().enumerate() {
        if position == 0 || scores[i] != scores[order[position - 1]] {
            current = u32::try_from(position + 1).unwrap_or(u32::MAX);
        }
        ranks[i].rank = current;
    }
    ranks
}

/// What ranking needs to know of an entity.
#[derive(Debug, Clone, Copy)]
pub struct RankInput<'a> {
    /// Its kind.
    pub kind: EntityKind,
    /// Its province code, for provincial ranking (local governments only).
    pub province: Option<&'a str>,
    /// Its published score.
    pub score: PublishedScore,
}

/// An entity's ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ranks {
    /// Among all entities of its kind in the country.
    pub national: Rank,
    /// Among the cities and regencies of its province (e.g. "3rd of 7 regencies/cities in the
    /// province"). `None` for ministries, agencies and provincial governments, which are ranked
    /// nationally with their peers only.
    pub provincial: Option<Rank>,
}

/// Ranks entities: nationally within each kind, and cities and regencies together within their
/// province. Returned in input order.
pub fn rank_entities(entities: &[RankInput<'_>]) -> Vec<Ranks> {
    let mut national_groups: HashMap<EntityKind, Vec<usize>> = HashMap::new();
    let mut provincial_groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in entities.iter().enumerate() {
        national_groups.entry(e.kind).or_default().push(i);
        if e.kind.is_local_government()
            && let Some(p) = e.province
        {
            provincial_groups.entry(p).or_default().push(i);
        }
    }
    let placeholder = Rank { rank: 0, of: 0 };
    let mut out = vec![
        Ranks {
            national: placeholder,
            provincial: None
        };
        entities.len()
    ];
    for members in national_groups.values() {
        let scores: Vec<PublishedScore> = members.iter().map(|&i| entities[i].score).collect();
        for (&i, r) in members.iter().zip(rank(&scores)) {
            out[i].national = r;
        }
    }
    for members in provincial_groups.values() {
        let scores: Vec<PublishedScore> = members.iter().map(|&i| entities[i].score).collect();
        for (&i, r) in members.iter().zip(rank(&scores)) {
            out[i].provincial = Some(r);
        }
    }
    out
}
