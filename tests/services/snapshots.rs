//! The rendered files of the fixed specs, one snapshot each: they are the contract of what a
//! server runs, reviewed like code.

use terrace::services::{Rendered, cloud_config, postgres, redis, restore_procedure};

use crate::specs;

/// One snapshot of the packages, apt sources and commands, then one per file, named after it.
fn snapshot_all(name: &str, rendered: &Rendered) {
    let mut summary = String::from("packages:\n");
    for package in &rendered.packages {
        summary.push_str(&format!("  {package}\n"));
    }
    summary.push_str("apt sources:\n");
    for source in &rendered.apt_sources {
        summary.push_str(&format!("  {}: {} (key: {} bytes)\n", source.name, source.source, source.key.len()));
    }
    summary.push_str("files:\n");
    for file in &rendered.files {
        let deferred = if file.deferred() { ", deferred" } else { "" };
        summary.push_str(&format!("  {} {} {}{deferred}\n", file.permissions, file.owner, file.path));
    }
    summary.push_str("runcmd:\n");
    for command in &rendered.runcmd {
        summary.push_str(&format!("  {command}\n"));
    }
    insta::assert_snapshot!(format!("{name}__summary"), summary);
    for file in &rendered.files {
        let file_name = file.path.trim_start_matches('/').replace('/', "_");
        insta::assert_snapshot!(format!("{name}__{file_name}"), file.content);
    }
}

#[test]
fn primary_with_pgbouncer_backups_and_pgvector() {
    snapshot_all("primary", &postgres(&specs::primary()));
}

#[test]
fn replica_over_tls() {
    snapshot_all("replica", &postgres(&specs::replica()));
}

#[test]
fn redis_primary_and_replica() {
    snapshot_all("redis_primary", &redis(&specs::redis_primary()));
    snapshot_all("redis_replica", &redis(&specs::redis_replica()));
}

#[test]
fn restore_procedures() {
    insta::assert_snapshot!("restore_primary", restore_procedure(&specs::primary()));
    insta::assert_snapshot!("restore_replica", restore_procedure(&specs::replica()));
}

/// The whole document once, to review the YAML itself (the Redis one: it has no long key).
#[test]
fn cloud_config_document() {
    insta::assert_snapshot!("redis_replica_cloud_config", cloud_config(&redis(&specs::redis_replica())));
}
