//! The storage a database's backups take in their bucket, estimated from what the `postgres`
//! block declares, so that the bucket's Object Storage cost reflects them. The model, documented in
//! docs/reference.md: a compressed logical dump is about 30% of the data volume (as if the volume
//! were full); `daily` keeps `retention_days` dumps and `hourly` 24 a day; continuous archiving
//! adds a base backup (another 30%) and WAL of about 10% of the volume a day for `pitr_days`.

use std::collections::BTreeMap;

use crate::addr::Address;
use crate::kind::Kind;
use crate::model::{Composite, Resource};
use crate::value::Value;

/// Sets `backups_gb` on every bucket that databases back up into and that does not set it.
pub(super) fn estimate(composites: &[Composite], resources: &mut [Resource]) {
    let mut per_bucket: BTreeMap<Address, f64> = BTreeMap::new();
    for composite in composites.iter().filter(|c| c.kind == Kind::Postgres) {
        let Some(Value::Map(backup)) = composite.attrs.get("backup") else { continue };
        let Some(bucket) = backup.get("bucket").and_then(Value::as_ref) else { continue };
        let size = composite.attrs.get("storage_gb").and_then(Value::as_f64).unwrap_or(0.0);
        let servers = 1.0; // only the primary is backed up
        let number = |name: &str, default: f64| backup.get(name).and_then(Value::as_f64).unwrap_or(default);
        let dumps_per_day = if backup.get("schedule").and_then(Value::as_str) == Some("hourly") { 24.0 } else { 1.0 };
        let mut gb = size * 0.3 * dumps_per_day * number("retention_days", 30.0);
        if backup.get("continuous").and_then(Value::as_bool) == Some(true) {
            gb += size * 0.3 + size * 0.1 * number("pitr_days", 7.0);
        }
        *per_bucket.entry(bucket.address.clone()).or_default() += gb * servers;
    }
    for resource in resources.iter_mut().filter(|r| r.kind == Kind::Bucket) {
        if resource.attr("backups_gb").is_some() {
            continue;
        }
        if let Some(gb) = per_bucket.get(&resource.address) {
            resource.attrs.insert("backups_gb".into(), Value::Number(gb.ceil()));
        }
    }
}
