//! A plan's data migrations as lines of text, shared by the text and Markdown renderers: each
//! migration's title, its steps in order (done, downtime, what the application must do), and what
//! it keeps until `--finish-migration`.

use crate::migrate::{Migration, Motion, Status};

/// The title of a migration.
pub(super) fn title(migration: &Migration) -> String {
    let what = match migration.status {
        Status::Starts => "moves to",
        Status::Resumes => "is moving (resumed) to",
        Status::Kept => "moved to",
        Status::Finishes => "moved to",
    };
    let to: Vec<String> = migration.to.iter().map(|t| format!("`{}`", t.host)).collect();
    if migration.motion == Motion::Rebalance {
        return format!(
            "`{}` {} from {} to {} shards by `{}`: {}",
            migration.service,
            match migration.status {
                Status::Starts => "is rebalanced",
                Status::Resumes => "is being rebalanced (resumed)",
                Status::Kept | Status::Finishes => "was rebalanced",
            },
            migration.from_shards.len(),
            to.len(),
            migration.shard_key.as_deref().unwrap_or_default(),
            to.join(", ")
        );
    }
    match &migration.shard_key {
        None => format!("`{}` {what} {} with its data (from `{}`)", migration.service, to.join(", "), migration.from),
        Some(key) => format!(
            "`{}` {} into {} shards by `{key}`: {} (from `{}`)",
            migration.service,
            match migration.status {
                Status::Starts => "is resharded",
                Status::Resumes => "is being resharded (resumed)",
                Status::Kept | Status::Finishes => "was resharded",
            },
            to.len(),
            to.join(", "),
            migration.from
        ),
    }
}

/// The steps, one line each: `1. prepare: ... [downtime: ...] [app: ...]`.
pub(super) fn steps(migration: &Migration) -> Vec<String> {
    if !migration.runs() {
        return Vec::new();
    }
    migration
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let mut line = format!("{}. {}: {}", i + 1, step.step, step.summary);
            if step.done {
                line.push_str(" (done)");
            }
            if let Some(downtime) = &step.downtime {
                line.push_str(&format!(" [downtime: {downtime}]"));
            }
            if let Some(action) = &step.app_action {
                line.push_str(&format!(" [the application must: {action}]"));
            }
            line
        })
        .collect()
}

/// The rows and organizations counted live, when they were.
pub(super) fn live(migration: &Migration) -> Option<String> {
    let live = migration.live.as_ref()?;
    let total: u64 = live.rows.iter().sum();
    let organizations: u64 = live.organizations.iter().sum();
    let share = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
    let per: Vec<String> = live
        .rows
        .iter()
        .zip(&live.organizations)
        .enumerate()
        .map(|(i, (rows, keys))| format!("shard {i}: {rows} rows of {keys} organizations"))
        .collect();
    Some(format!(
        "counted live: {total} rows of {organizations} organizations; {} rows of {} organizations ({:.0}%) change \
         database; after: {}",
        live.moving_rows,
        live.moving_organizations,
        share(live.moving_organizations, organizations),
        per.join(", ")
    ))
}

/// What the migration keeps, or deletes when finishing.
pub(super) fn kept(migration: &Migration) -> Option<String> {
    if migration.kept.is_empty() {
        return None;
    }
    let list: Vec<String> = migration.kept.iter().map(|a| format!("`{a}`")).collect();
    let list = list.join(", ");
    Some(match (migration.status, &migration.kept_until) {
        (Status::Finishes, Some(until)) => {
            format!(
                "kept until {until} (migration_keep_days), which has passed: this apply deletes the old copy: {list}"
            )
        }
        (Status::Finishes, None) => format!("--finish-migration deletes the old copy: {list}"),
        (_, Some(until)) => format!(
            "kept, the old database stopped and read-only, until {until} (migration_keep_days: the first apply \
             from then deletes it) or `terrace apply --finish-migration`: {list}"
        ),
        (_, None) => {
            format!("kept, the old database stopped and read-only, until `terrace apply --finish-migration`: {list}")
        }
    })
}

/// `terrace migrate status` for one recorded migration; `lag` is the copy's lag in bytes when it
/// was read (`None` when it does not stream), or why it could not be.
pub fn status(service: &str, record: &crate::migrate::Record, lag: Result<Option<i64>, String>) -> String {
    use crate::migrate::Step;
    let steps = record.steps();
    let done = record.step.map_or(0, |step| steps.iter().position(|s| *s == step).map_or(0, |i| i + 1));
    let what = match (&record.shard_key, record.motion()) {
        (Some(key), Motion::Rebalance) => format!(
            "{service}: rebalanced by {key} from {} shards ({}) to {}: {}",
            record.from_shards.len(),
            record.from_shards.join(", "),
            record.to.len(),
            record.to.join(", ")
        ),
        (Some(key), _) => format!(
            "{service}: from {} resharded by {key} into {} shards: {}",
            record.from,
            record.to.len(),
            record.to.join(", ")
        ),
        (None, _) => format!("{service}: from {} to {}", record.from, record.to.join(", ")),
    };
    let mut text = format!("{what}, started {}\n", record.started);
    match record.step {
        Some(step) => text.push_str(&format!("  step: {step} done ({done} of {})\n", steps.len())),
        None => text.push_str(&format!("  step: none done yet (0 of {})\n", steps.len())),
    }
    match Step::after(steps, record.step).next() {
        Some(next) => text.push_str(&format!("  next: {next} (`terrace apply` continues it)\n")),
        None if record.motion() == Motion::Rebalance => {
            text.push_str("  finished: every organization is on the shard the rule routes it to\n")
        }
        None => text.push_str("  finished: the new database is the primary\n"),
    }
    if let Some(finished) = &record.finished {
        text.push_str(&format!("  finished at: {finished}\n"));
    }
    match lag {
        Ok(Some(bytes)) if bytes >= 0 => text.push_str(&format!("  lag: {bytes} bytes of WAL behind\n")),
        Ok(Some(_)) => text.push_str("  lag: the copy is not streaming\n"),
        Ok(None) => {}
        Err(why) => text.push_str(&format!("  lag: unknown ({why})\n")),
    }
    if !record.kept.is_empty() {
        text.push_str(&format!("  kept until `terrace apply --finish-migration`: {}\n", record.kept.join(", ")));
    }
    text
}
