//! The error of loading a price catalog.

use std::path::PathBuf;

/// What can go wrong when a catalog is chosen by date or read from a file.
///
/// Each message is complete on its own (it names the path or date and includes the underlying message),
/// because callers print catalog errors as one line next to the `--prices` option they came from.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The date is older than every embedded list.
    #[error(
        "no embedded price list is in force on {date}: the oldest starts on {oldest}; available lists: {available}"
    )]
    DateBeforeOldestList {
        /// The date that was asked for.
        date: String,
        /// The id of the oldest embedded list.
        oldest: String,
        /// Every embedded list as `id (file)`, oldest first.
        available: String,
    },
    /// The spec looks like `YYYY-MM-DD` but is no calendar date.
    #[error("`{spec}` is not a valid date (expected YYYY-MM-DD, e.g. 2026-06-15)")]
    InvalidDate {
        /// The spec as given.
        spec: String,
    },
    /// The pricing file could not be read.
    #[error("cannot read pricing file {}: {error}", path.display())]
    Read {
        /// The file as given.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The pricing file is not JSON.
    #[error("pricing file {} is not valid JSON: {error}", path.display())]
    Syntax {
        /// The file as given.
        path: PathBuf,
        /// The parser's message, with line and column.
        error: serde_json::Error,
    },
    /// The pricing file is JSON but not shaped like Hetzner's `GET /pricing` response.
    #[error(
        "pricing file {} is not a Hetzner `GET /pricing` response (nor its `pricing` object): {error}",
        path.display()
    )]
    Shape {
        /// The file as given.
        path: PathBuf,
        /// What serde found missing or mistyped.
        error: serde_json::Error,
    },
    /// A file compiled into the binary is broken; the crate's tests guard against this.
    #[error("embedded catalog file {file} is broken: {message}")]
    Embedded {
        /// The file under `providers/catalog/`.
        file: String,
        /// What is wrong with it.
        message: String,
    },
}
