//! The resources of the API, one module (or folder) each; every endpoint's doc comment says who
//! may call it, and each module's table lists them (collected in `docs/api.md`).

pub mod audit;
pub mod certificates;
pub mod cycles;
pub mod findings;
pub mod flags;
pub mod forms;
pub mod imports;
pub mod jobs;
pub mod methodologies;
pub mod reference;
pub mod results;
pub mod self_assessments;
pub mod submissions;
pub mod survey_workbook;
pub mod surveys;
pub mod webhooks;
