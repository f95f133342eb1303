//! Tests of the files terrace renders for the servers of `postgres` and `redis`: snapshots of
//! every file, cloud-init's own schema check of every document, and real PostgreSQL, PgBouncer,
//! Redis and S3 (moto) servers started from the rendered files on loopback.

mod backup;
mod cloud_init;
mod phases;
mod postgres;
mod redis;
mod snapshots;
mod specs;
mod support;
