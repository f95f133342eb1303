//! The Hetzner Cloud provider of terrace: the price catalog (and, later, wire types, the HTTP client and
//! the API emulator). It knows nothing of the planner.

pub mod client;
pub mod cloud;
pub mod emulator;
pub mod host;
pub mod objectstorage;
pub mod pricing;
