//! The state file format: a versioned JSON document. Each `format_version` has a module that reads
//! it (`v0`, `v1`); an older version is read by its own module and carried forward by one upgrade
//! function per version until it is the current one, and only the current version is written.
//! A newer version is refused, since this terrace would drop what it does not know.
//! The layout is a contract, documented in `docs/state-format.md`.

mod v0;
mod v1;

use serde::Deserialize;

use crate::error::StateError;
use crate::model::State;

/// The version `to_json` writes; `from_json` reads it and every older one.
pub const FORMAT_VERSION: u32 = 1;

/// The state as a file: pretty JSON with a trailing newline, every map's keys sorted and lists of
/// addresses sorted, so the same state always gives the same bytes.
pub fn to_json(state: &State) -> Vec<u8> {
    v1::to_json(state)
}

/// Reads a state file of any supported version. `origin` (a path, an object URL) names the file in
/// errors: not JSON (with line and column), JSON that terrace did not write (a Terraform state is
/// recognised and named), a newer format_version, or a layout that does not match its version.
pub fn from_json(bytes: &[u8], origin: &str) -> Result<State, StateError> {
    let version = format_version(bytes, origin)?;
    let invalid = |error: serde_json::Error| StateError::Invalid {
        origin: origin.to_owned(),
        version,
        line: error.line(),
        column: error.column(),
        detail: message(&error),
    };
    let current = match version {
        0 => {
            let file: v0::File = serde_json::from_slice(bytes).map_err(invalid)?;
            v0::upgrade(file).map_err(|detail| StateError::Upgrade { origin: origin.to_owned(), from: 0, detail })?
        }
        _ => serde_json::from_slice::<v1::File>(bytes).map_err(invalid)?,
    };
    let state = current.into_state();
    let problems = crate::check::problems(&state);
    if !problems.is_empty() {
        return Err(StateError::Inconsistent { origin: origin.to_owned(), problems });
    }
    Ok(state)
}

/// The few top-level fields that tell what a JSON document is, read before its full layout so that
/// a foreign or newer file gets a message about what it is rather than about a field it lacks.
#[derive(Deserialize)]
struct Probe {
    format_version: Option<serde_json::Value>,
    terraform_version: Option<serde_json::Value>,
}

/// The file's format_version, once the bytes are known to be JSON, a terrace state, and of a
/// version this terrace reads.
fn format_version(bytes: &[u8], origin: &str) -> Result<u32, StateError> {
    let not_terrace = |reason: String| StateError::NotTerraceState { origin: origin.to_owned(), reason };
    let corrupt = |error: serde_json::Error| StateError::Corrupt {
        origin: origin.to_owned(),
        line: error.line(),
        column: error.column(),
        detail: message(&error),
    };
    // serde reads a struct from a JSON array too, by position, so the object is checked for here.
    if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(not_terrace("it is JSON but not an object".to_owned())),
            Err(error) => Err(corrupt(error)),
        };
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(corrupt)?;
    if let Some(terraform_version) = probe.terraform_version {
        return Err(not_terrace(format!(
            "it is a Terraform state (terraform_version {terraform_version}); terrace keeps a state \
             of its own and does not read Terraform's"
        )));
    }
    let Some(found) = probe.format_version else {
        return Err(not_terrace("it has no format_version".to_owned()));
    };
    let Some(number) = found.as_u64() else {
        return Err(not_terrace(format!("its format_version {found} is not a whole number")));
    };
    match u32::try_from(number) {
        Ok(version) if version <= FORMAT_VERSION => Ok(version),
        _ => Err(StateError::NewerFormat { origin: origin.to_owned(), found: number, supported: FORMAT_VERSION }),
    }
}

/// serde_json's message without its " at line L column C" suffix, which the errors carry apart.
fn message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_owned(),
        None => text,
    }
}

/// Reads a lineage, which must be a UUID: anything else means the file was edited or damaged.
fn lineage<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    match uuid::Uuid::try_parse(&text) {
        Ok(_) => Ok(text),
        Err(_) => Err(serde::de::Error::custom(format!("lineage {text:?} is not a UUID"))),
    }
}

/// Sorts and deduplicates a list of addresses or attribute paths, as the model keeps them.
fn normalized(mut list: Vec<String>) -> Vec<String> {
    list.sort_unstable();
    list.dedup();
    list
}
