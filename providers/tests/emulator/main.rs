//! Tests of the Hetzner Cloud API emulator over real HTTP: every answer is validated against the
//! response schema of its operation in `../shared/hetzner/hcloud-openapi.json`.

// A test that meets an unexpected shape should stop right there, with the value in the panic message.
#![expect(clippy::unwrap_used, reason = "tests panic on unexpected answers on purpose")]

mod conformance;
mod faults;
mod http_layer;
mod inspection;
mod lifecycle;
mod listing;
mod rules;
mod support;
