//! The domain and the scoring engine of kepatuhan, Indonesia's Ombudsman compliance assessment
//! (*Penilaian Kepatuhan Penyelenggaraan Pelayanan Publik*).
//!
//! This crate is pure: no database, no network, no async runtime. Everything it does can be
//! tested with plain unit and property tests.
//!
//! - [`cycle`], [`entity`], [`score`]: domain values that cannot hold invalid data.
//! - [`methodology`]: a year's methodology as data (dimensions → variables → indicators, scales,
//!   survey mappings, composition, aggregation and bands), loaded and validated from TOML or JSON.
//! - [`scoring`]: the scoring rules of `DOMAIN.md`: units, entities, bands, rankings, year-on-year
//!   comparison and deficiencies, in exact decimal arithmetic.

pub mod cycle;
pub mod entity;
pub mod methodology;
pub mod score;
pub mod scoring;
pub mod synthetic;

pub use cycle::CycleYear;
pub use entity::EntityKind;
pub use methodology::Methodology;
pub use score::{PublishedScore, Score, Weight};
