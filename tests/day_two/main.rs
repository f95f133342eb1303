//! Day-two tests: terrace against real hosts. Each test runs in a lab of its own (tests/lab,
//! docs/lab.md), where every server the emulator creates is a little host of real processes.

#[path = "../lab/mod.rs"]
mod lab;

mod dataset;
mod faults;
mod lab_smoke;
mod migration;
mod path;
#[path = "../shared/phases.rs"]
mod phases;
mod rebalance;
mod refusals;
mod reshard;
mod support;
mod writer;
