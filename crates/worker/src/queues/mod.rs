//! One module per queue. Each handler runs one job and ends through [`crate::retry::finish`].
//!
//! | queue | payload | module |
//! |---|---|---|
//! | `recompute` | `Recompute` | [`recompute`] |
//! | `certificates` | `IssueCertificates` | [`certificates`] (`issue`) |
//! | `certificate-render` | `RenderCertificates` | [`certificates`] (`render`) |
//! | `webhooks` | `DeliverWebhook` | [`webhooks`] |

pub mod certificates;
pub mod recompute;
pub mod webhooks;
