//! One module per queue. Each handler runs one job and ends through [`crate::retry::finish`].
//!
//! | queue | payload | module |
//! |---|---|---|
//! | `recompute` | `Recompute` | [`recompute`] |
//! | `certificates` | `IssueCertificates` | [`certificates`] |
//! | `certificate-render` | `RenderCertificates` | [`certificate_render`] |
//! | `webhooks` | `DeliverWebhook` | [`webhooks`] |

pub mod certificate_render;
pub mod certificates;
pub mod recompute;
pub mod webhooks;
