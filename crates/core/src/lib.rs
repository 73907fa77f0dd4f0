//! The domain and the scoring engine of kepatuhan, Indonesia's Ombudsman compliance assessment
//! (*Penilaian Kepatuhan Penyelenggaraan Pelayanan Publik*).
//!
//! This crate is pure: no database, no network, no async runtime. Everything it does can be
//! tested with plain unit and property tests.
//!
//! - [`cycle`], [`entity`], [`score`]: domain values that cannot hold invalid data.
//! - [`cycle::CycleState`] and [`submission`]: the cycle and submission state machines, each one
//!   transition table.
//! - [`methodology`]: a year's methodology as data (dimensions → variables → indicators, scales,
//!   survey mappings, composition, aggregation and bands), loaded and validated from TOML or JSON.
//! - [`flags`]: integrity flags, what deserves a second look before publication.
//! - [`scoring`]: the scoring rules of `DOMAIN.md`: units, entities, bands, rankings, year-on-year
//!   comparison and deficiencies, in exact decimal arithmetic.
//!
//! ```
//! use kepatuhan_core::methodology::builtin;
//! use kepatuhan_core::scoring::{AnswerInput, Sheet, SurveyTally, UnitInput, grade, score_unit};
//! use kepatuhan_core::CycleYear;
//!
//! let m = builtin::by_code("ori-2022").expect("shipped");
//! // Every indicator at level 2 of its 0–3 scale…
//! let mut sheet = Sheet::new(&m);
//! for id in m.indicator_ids() {
//!     sheet.set_by_id(&m, id, AnswerInput::Value(2)).unwrap();
//! }
//! let mut unit = UnitInput::new(&m, sheet);
//! // …and 27 of 30 surveyed service users reporting no maladministration.
//! let survey = m.survey_id("maladministration_perception").unwrap();
//! unit.set_survey(survey, SurveyTally::from_counts(m.survey(survey), vec![27, 3]).unwrap());
//!
//! let score = score_unit(&m, &unit).unwrap();
//! // 75.76 % × 66.67 + 24.24 % × 90 = 72.32
//! assert_eq!(score.published.to_indonesian(), "72,32");
//! let g = grade(&m, CycleYear::new(2023).unwrap(), score.published, None);
//! assert_eq!((g.code.as_str(), g.label.as_str()), ("C", "Kualitas Sedang"));
//! ```

pub mod cycle;
pub mod entity;
pub mod flags;
pub mod methodology;
pub mod score;
pub mod scoring;
pub mod submission;
pub mod synthetic;

pub use cycle::{CycleId, CycleKey, CycleKind, CycleState, CycleYear};
pub use entity::EntityKind;
pub use methodology::Methodology;
pub use score::{PublishedScore, Score, Weight};
pub use submission::{SubmissionAction, SubmissionState};
