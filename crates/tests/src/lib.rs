//! End-to-end tests of kepatuhan that need the api and the worker together: jobs enqueued by the
//! api and run by the worker, certificates rendered and verified, webhooks delivered, traces
//! continued from a request into its jobs. The tests are under `tests/`; this library is empty.
