//! terrace: a declarative infrastructure planner for Hetzner Cloud. Definition files (HCL) are
//! compiled into a graph of Hetzner resources, validated, planned with monthly costs and rendered
//! as text, JSON or Markdown. The `terrace` binary (src/main.rs and src/cli/) is a thin layer over
//! this library.

pub mod addr;
pub mod apply;
pub mod compare;
pub mod compile;
pub mod cost;
pub mod diag;
pub mod diff;
pub mod gate;
pub mod graph;
pub mod kind;
pub mod lang;
pub mod migrate;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod render;
pub mod saved;
pub mod schema;
pub mod services;
pub mod validate;
pub mod value;
pub mod walk;
