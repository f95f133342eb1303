//! Finding a plan's data migrations: moves and reshards the phase starts, and those the state
//! records; and the texts of their steps. Pure functions of the compiled phase and the state.

use std::collections::BTreeSet;

use terrace_state::State;

use super::{Finish, Migration, Motion, PlannedStep, Record, Status, Step, Target, commands};
use crate::addr::Address;
use crate::kind::Kind;
use crate::model::Compiled;

/// The migrations of a plan: moves of a `postgres` service's primary to another host, reshards of
/// a removed service into new shards, and those the state records. Returns them with the reasons
/// a plan may not be applied.
pub fn detect(desired: &Compiled, prior: &State, finish: Finish) -> (Vec<Migration>, Vec<String>) {
    let (mut found, refusals) = found(desired, prior, finish.asked);
    for migration in found.iter_mut().filter(|m| m.status == Status::Kept) {
        let Some(days) = keep_days(desired, migration) else { continue };
        let Ok(Some(record)) = Record::of(prior, &migration.service) else { continue };
        let until = record.kept_until(days);
        migration.kept_until = until.map(|t| humantime::format_rfc3339_seconds(t).to_string());
        if let (Some(until), Some(now)) = (until, finish.now)
            && now >= until
        {
            migration.status = Status::Finishes;
        }
    }
    (found, refusals)
}

/// The `migration_keep_days` of the service the data went to.
fn keep_days(desired: &Compiled, migration: &Migration) -> Option<u64> {
    let target = migration.to.first()?;
    desired.composite(&target.service)?.attrs.get("migration_keep_days")?.as_u64()
}

fn found(desired: &Compiled, prior: &State, finish: bool) -> (Vec<Migration>, Vec<String>) {
    let mut found = Vec::new();
    let mut refusals = Vec::new();
    for composite in desired.composites.iter().filter(|c| c.kind == Kind::Postgres) {
        match moved(desired, prior, finish, &composite.address) {
            Ok(Some(migration)) => found.push(migration),
            Ok(None) => {}
            Err(refusal) => refusals.push(refusal),
        }
    }
    match reshards(desired, prior, finish) {
        Ok(reshards) => found.extend(reshards),
        Err(refusal) => refusals.push(refusal),
    }
    match rebalances(desired, prior, finish) {
        Ok(rebalances) => found.extend(rebalances),
        Err(refusal) => refusals.push(refusal),
    }
    for migration in &found {
        refusals.extend(super::checks::versions(desired, prior, migration));
        refusals.extend(super::checks::networks(desired, prior, migration));
    }
    (found, refusals)
}

/// A record's status: resumed while steps remain, else kept or (`--finish-migration`) finished.
fn status_of(record: &Record, finish: bool) -> Status {
    match (record.done(), finish) {
        (true, true) => Status::Finishes,
        (true, false) => Status::Kept,
        (false, _) => Status::Resumes,
    }
}

fn recorded_id(prior: &State, address: &Address) -> bool {
    prior.resources.get(&address.to_string()).is_some_and(|r| r.id.is_some())
}

/// A move of `service`'s primary to another host, started now or recorded.
fn moved(desired: &Compiled, prior: &State, finish: bool, service: &Address) -> Result<Option<Migration>, String> {
    let Some(to) = primary_host(service, |a| desired.resources.contains(a)) else { return Ok(None) };
    // A record of a move that never ran a step gives way when the phase moves elsewhere.
    let record = Record::of(prior, service)?.filter(|r| r.step.is_some() || r.to == [to.to_string()]);
    let (from, done, status, kept) = match record {
        Some(record) if record.shard_key.is_none() => {
            let (Ok(from), [recorded_to]) = (record.from.parse::<Address>(), &record.to[..]) else {
                return Err(format!("the state's record of the migration of `{service}` names no host"));
            };
            if recorded_to != &to.to_string() {
                return Err(format!(
                    "`{service}` is being migrated to `{recorded_to}`, which this phase does not have (its primary \
                     is `{to}`): apply the phase the migration started in, and `terrace apply --finish-migration`, \
                     before moving it again"
                ));
            }
            let kept = record.kept.iter().filter_map(|a| a.parse().ok()).filter(|a| recorded_id(prior, a)).collect();
            (from, record.step, status_of(&record, finish), kept)
        }
        // The service's data came from another by a reshard; this is not a move.
        Some(_) => return Ok(None),
        None => {
            // A primary recorded on another host than the phase's, and the phase's not made yet.
            let Some(from) = primary_host(service, |a| recorded_id(prior, a) && is_primary(prior, a)) else {
                return Ok(None);
            };
            if from == to || recorded_id(prior, &to) {
                return Ok(None);
            }
            let kept: Vec<Address> =
                recorded_within(prior, service, true).filter(|a| !desired.resources.contains(a)).collect();
            (from, None, Status::Starts, kept)
        }
    };
    let target = target(desired, service.clone(), to);
    let found = Found {
        service: service.clone(),
        motion: Motion::Move,
        from,
        from_shards: Vec::new(),
        to: vec![target],
        shard_key: None,
        status,
        done,
        kept,
    };
    Ok(Some(migration(desired, prior, found)))
}

/// Reshards: a removed `postgres` service whose data goes into the new shards of a sharded block,
/// started now, or recorded.
fn reshards(desired: &Compiled, prior: &State, finish: bool) -> Result<Vec<Migration>, String> {
    let mut found = Vec::new();
    let mut started_into = BTreeSet::new();
    for (source, json) in &prior.migrations {
        let Ok(service) = source.parse::<Address>() else { continue };
        let Some(record) = Record::of(prior, &service)? else { continue };
        let Some(key) = record.shard_key.clone() else { continue };
        if record.motion() != Motion::Reshard {
            continue;
        }
        // A reshard that never ran a step gives way when the phase has other shards.
        if record.step.is_none() && record.to.iter().any(|h| h.parse().is_ok_and(|h| !desired.resources.contains(&h))) {
            continue;
        }
        let from: Address = record.from.parse().map_err(|_| format!("the migration of `{source}` names no host"))?;
        let mut targets = Vec::new();
        for host in &record.to {
            let host: Address =
                host.parse().map_err(|_| format!("the migration of `{source}` names no host: {json}"))?;
            if !desired.resources.contains(&host) {
                let what = if record.done() { "was resharded" } else { "is being resharded" };
                return Err(format!(
                    "`{source}` {what} into `{host}`, which this phase does not have: apply the phase the reshard \
                     started in, and `terrace apply --finish-migration`, before changing the shards"
                ));
            }
            let service = host.parent().unwrap_or_else(|| host.clone());
            started_into.insert(service.block());
            targets.push(target(desired, service, host));
        }
        let kept = record.kept.iter().filter_map(|a| a.parse().ok()).filter(|a| recorded(prior, a)).collect();
        let status = status_of(&record, finish);
        let found_one = Found {
            service,
            motion: Motion::Reshard,
            from,
            from_shards: Vec::new(),
            to: targets,
            shard_key: Some(key),
            status,
            done: record.step,
            kept,
        };
        found.push(migration(desired, prior, found_one));
    }
    // New reshards: a sharded block none of whose shards is recorded yet, and exactly one removed
    // service with a primary to fill it from.
    for Sharded { block, key, shards } in sharded_blocks(desired) {
        if started_into.contains(&block) || shards.is_empty() {
            continue;
        }
        if shards.iter().any(|shard| recorded_within(prior, &shard.service, true).next().is_some()) {
            continue;
        }
        let [source] = &removed_primaries(desired, prior)[..] else { continue };
        let source = source.clone();
        let Some(from) = primary_host(&source, |a| recorded_id(prior, a) && is_primary(prior, a)) else { continue };
        let targets = shards;
        let kept = recorded_within(prior, &source, false).collect();
        let found_one = Found {
            service: source,
            motion: Motion::Reshard,
            from,
            from_shards: Vec::new(),
            to: targets,
            shard_key: Some(key),
            status: Status::Starts,
            done: None,
            kept,
        };
        found.push(migration(desired, prior, found_one));
    }
    Ok(found)
}

/// Rebalances: a sharded block whose shard count changes (N -> M), started now, or recorded (by
/// the block's address). The shards of the old count are the sources; those the phase no longer
/// has are kept until `--finish-migration`.
fn rebalances(desired: &Compiled, prior: &State, finish: bool) -> Result<Vec<Migration>, String> {
    let mut found = Vec::new();
    for Sharded { block, key, shards } in sharded_blocks(desired) {
        if shards.is_empty() {
            continue;
        }
        // A reshard into the block that is under way fills it first.
        let resharding = prior.migrations.keys().filter_map(|s| s.parse::<Address>().ok()).any(|service| {
            Record::of(prior, &service).ok().flatten().is_some_and(|r| {
                r.motion() == Motion::Reshard
                    && !r.done()
                    && r.to.iter().any(|h| h.parse::<Address>().is_ok_and(|h| h.is_within(&block)))
            })
        });
        if resharding {
            continue;
        }
        let record = Record::of(prior, &block)?.filter(|r| r.motion() == Motion::Rebalance);
        let mut kept_before = Vec::new();
        if let Some(record) = &record {
            let planned: Vec<String> = shards.iter().map(|s| s.host.to_string()).collect();
            if record.to == planned || (!record.done() && record.step.is_some()) {
                if record.to != planned {
                    return Err(format!(
                        "`{block}` is being rebalanced into {} shards, and this phase has {}: apply the phase the \
                         rebalance started in before changing the shard count again",
                        record.to.len(),
                        planned.len()
                    ));
                }
                found.push(recorded_rebalance(desired, prior, finish, &block, record, &key)?);
                continue;
            }
            // A finished rebalance gives way to the next, which keeps all it kept.
            kept_before = record.kept.iter().filter_map(|a| a.parse::<Address>().ok()).collect();
        }
        let recorded_shards = recorded_shards(prior, &block);
        let before = recorded_shards.len();
        if before == 0 || before == shards.len() {
            continue;
        }
        if recorded_shards.iter().copied().ne(0..before as u32) {
            return Err(format!(
                "`{block}` records the shards {recorded_shards:?}, not 0 to {}: terrace cannot tell which \
                 organizations each holds (nothing was changed)",
                before - 1
            ));
        }
        let mut from_shards = Vec::new();
        for index in 0..before as u32 {
            let shard = block.with_index(Some(index));
            let Some(host) = primary_host(&shard, |a| recorded_id(prior, a) && is_primary(prior, a)) else {
                continue;
            };
            let server = server_of_recorded(prior, &host);
            from_shards.push(Target { service: shard, host, server });
        }
        let mut kept = kept_before;
        for gone in from_shards.iter().skip(shards.len()) {
            kept.extend(recorded_within(prior, &gone.service, false));
        }
        let found_one = Found {
            service: block.clone(),
            motion: Motion::Rebalance,
            from: from_shards[0].host.clone(),
            from_shards,
            to: shards,
            shard_key: Some(key),
            status: Status::Starts,
            done: None,
            kept,
        };
        found.push(migration(desired, prior, found_one));
    }
    Ok(found)
}

/// A rebalance the state records, resumed, kept or finished.
fn recorded_rebalance(
    desired: &Compiled,
    prior: &State,
    finish: bool,
    block: &Address,
    record: &Record,
    key: &str,
) -> Result<Migration, String> {
    let unreadable = || format!("the state's record of the rebalance of `{block}` names no host");
    let parse = |host: &String| host.parse::<Address>().map_err(|_| unreadable());
    let mut from_shards = Vec::new();
    for host in &record.from_shards {
        let host = parse(host)?;
        let service = host.parent().ok_or_else(unreadable)?;
        from_shards.push(Target { server: server_of_recorded(prior, &host), service, host });
    }
    let mut to = Vec::new();
    for host in &record.to {
        let host = parse(host)?;
        to.push(target(desired, host.parent().ok_or_else(unreadable)?, host));
    }
    let found = Found {
        service: block.clone(),
        motion: Motion::Rebalance,
        from: from_shards.first().map(|s| s.host.clone()).ok_or_else(unreadable)?,
        from_shards,
        to,
        shard_key: Some(record.shard_key.clone().unwrap_or_else(|| key.to_owned())),
        status: status_of(record, finish),
        done: record.step,
        kept: record.kept.iter().filter_map(|a| a.parse().ok()).filter(|a| recorded(prior, a)).collect(),
    };
    Ok(migration(desired, prior, found))
}

/// `postgres` services the state records with a primary, which the phase no longer has, and
/// which no migration under way moves (a finished one's record gives way to the reshard's).
fn removed_primaries(desired: &Compiled, prior: &State) -> Vec<Address> {
    let services: BTreeSet<Address> = prior
        .resources
        .values()
        .filter_map(|r| r.composite.as_deref())
        .filter_map(|c| c.parse::<Address>().ok())
        .filter(|c| c.kind() == Kind::Postgres && desired.composite(c).is_none())
        .collect();
    services
        .into_iter()
        .filter(|s| Record::of(prior, s).is_ok_and(|r| r.is_none_or(|r| r.shard_key.is_none() && r.done())))
        .filter(|s| primary_host(s, |a| recorded_id(prior, a) && is_primary(prior, a)).is_some())
        .collect()
}

fn recorded(prior: &State, address: &Address) -> bool {
    prior.resources.contains_key(&address.to_string())
}

/// The recorded resources within `service`; with `with_id`, only those the cloud holds.
fn recorded_within<'a>(prior: &'a State, service: &'a Address, with_id: bool) -> impl Iterator<Item = Address> + 'a {
    prior
        .resources
        .iter()
        .filter(move |(_, r)| !with_id || r.id.is_some())
        .filter_map(|(a, _)| a.parse::<Address>().ok())
        .filter(move |a| a.is_within(service))
}

fn target(desired: &Compiled, service: Address, host: Address) -> Target {
    let server = desired
        .resource(&host)
        .and_then(|r| r.attrs.get("server"))
        .and_then(crate::value::Value::as_ref)
        .map(|r| r.address.clone());
    Target { service, host, server }
}

/// A migration found, before its outputs and step texts.
struct Found {
    service: Address,
    motion: Motion,
    from: Address,
    from_shards: Vec<Target>,
    to: Vec<Target>,
    shard_key: Option<String>,
    status: Status,
    done: Option<Step>,
    kept: Vec<Address>,
}

fn migration(desired: &Compiled, prior: &State, found: Found) -> Migration {
    let outputs = desired
        .outputs
        .iter()
        .filter(|o| o.value.references().iter().any(|r| found.to.iter().any(|t| r.address.is_within(&t.service))))
        .map(|o| o.name.clone())
        .collect();
    let mut migration = Migration {
        service: found.service,
        motion: found.motion,
        from_server: server_of_recorded(prior, &found.from),
        from: found.from,
        from_shards: found.from_shards,
        to: found.to,
        shard_key: found.shard_key,
        status: found.status,
        steps: Vec::new(),
        kept: found.kept,
        outputs,
        live: None,
        kept_until: None,
    };
    let steps = found.motion.steps();
    migration.steps = steps.iter().map(|step| planned(&migration, *step, found.done)).collect();
    migration
}

/// A sharded service whose shard count changes: how many organizations the seed's rule sends to
/// another shard, said loudly beside the rebalance that moves them, never left to a silent change
/// of the shard map.
pub fn reshard_warnings(desired: &Compiled, prior: &State) -> Vec<String> {
    let mut warnings = Vec::new();
    for Sharded { block, key, .. } in sharded_blocks(desired) {
        let (before, now) = (recorded_shards(prior, &block).len(), desired_count(desired, &block));
        if before == 0 || before == now {
            continue;
        }
        let share = crate::compile::shard::moving_share(before as u32, now as u32);
        warnings.push(format!(
            "`{block}` goes from {before} to {now} shards: the rule parseInt(md5({key})[0:8], 16) % {now} sends \
             about {:.0}% of the organizations to another shard; the rebalance in this plan moves their rows while \
             writes pause, and the application must route by the new SHARD_MAP before they resume",
            share * 100.0
        ));
    }
    warnings
}

/// A sharded block of the phase: its key, and its shards in order as migration targets (empty
/// when the phase does not give every shard a primary host).
struct Sharded {
    block: Address,
    key: String,
    shards: Vec<Target>,
}

fn sharded_blocks(desired: &Compiled) -> Vec<Sharded> {
    let mut blocks: Vec<Sharded> = Vec::new();
    for composite in desired.composites.iter().filter(|c| c.kind == Kind::Postgres) {
        let Some(key) = composite.attrs.get("shard_key").and_then(crate::value::Value::as_str) else { continue };
        let block = composite.address.block();
        if blocks.iter().any(|b| b.block == block) {
            continue;
        }
        let members = desired.composites.iter().filter(|c| c.address.block() == block);
        let shards: Option<Vec<Target>> = members
            .map(|c| {
                let host = primary_host(&c.address, |a| desired.resources.contains(a))?;
                Some(target(desired, c.address.clone(), host))
            })
            .collect();
        blocks.push(Sharded { block, key: key.to_owned(), shards: shards.unwrap_or_default() });
    }
    blocks
}

fn desired_count(desired: &Compiled, block: &Address) -> usize {
    desired.composites.iter().filter(|c| &c.address.block() == block).count()
}

/// The indices of `block`'s shards the state records with a primary, but those a finished or
/// running rebalance keeps (emptied, until `--finish-migration`).
fn recorded_shards(prior: &State, block: &Address) -> BTreeSet<u32> {
    let kept: Vec<Address> = Record::of(prior, block)
        .ok()
        .flatten()
        .map(|r| r.kept.iter().filter_map(|a| a.parse().ok()).collect())
        .unwrap_or_default();
    prior
        .resources
        .values()
        .filter_map(|r| r.composite.as_deref()?.parse::<Address>().ok())
        .filter(|c| &c.block() == block && c.kind() == Kind::Postgres)
        .filter(|c| !kept.iter().any(|k| k.is_within(c)))
        .filter(|c| primary_host(c, |a| recorded_id(prior, a) && is_primary(prior, a)).is_some())
        .filter_map(|c| c.index())
        .collect()
}

/// The addresses a migration keeps, and whether they are to be deleted (`--finish-migration`).
pub fn kept(migrations: &[Migration]) -> BTreeSet<(Address, bool)> {
    migrations.iter().flat_map(|m| m.kept.iter().map(move |a| (a.clone(), m.status == Status::Finishes))).collect()
}

/// The host of a service's primary: on a server of its own (`host.primary`) or on another block's
/// server (`host.shared`), the first that `exists`.
fn primary_host(service: &Address, exists: impl Fn(&Address) -> bool) -> Option<Address> {
    ["primary", "shared"].into_iter().map(|role| service.child(Kind::Host, role, None)).find(|a| exists(a))
}

/// A recorded host that serves its service's primary.
fn is_primary(prior: &State, host: &Address) -> bool {
    prior
        .resources
        .get(&host.to_string())
        .and_then(|r| r.attributes.get("role"))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|role| role == "primary")
}

/// The server a recorded host lives on: the server among its recorded dependencies.
fn server_of_recorded(prior: &State, host: &Address) -> Option<Address> {
    prior
        .resources
        .get(&host.to_string())?
        .dependencies
        .iter()
        .filter_map(|d| d.parse::<Address>().ok())
        .find(|d| d.kind() == Kind::Server)
}

fn planned(migration: &Migration, step: Step, done: Option<Step>) -> PlannedStep {
    let old = migration.from_server.as_ref().map_or_else(|| format!("`{}`", migration.from), |s| format!("`{s}`"));
    let names: Vec<String> = migration
        .to
        .iter()
        .map(|t| t.server.as_ref().map_or_else(|| format!("`{}`", t.host), |s| format!("`{s}`")))
        .collect();
    let (new, each) = match &names[..] {
        [one] => (one.clone(), one.clone()),
        many => (many.join(", "), "each new shard".to_owned()),
    };
    if migration.motion == Motion::Rebalance {
        return rebalance_step(migration, step, done);
    }
    let (summary, downtime, app_action) = match step {
        Step::Prepare => (
            format!(
                "let {new} replicate from the old database on {old}: the replication role, a pg_hba.conf line \
                 for the private address of {each}, {slots}, and {old}'s private address to listen on{checks}",
                slots = match migration.to.len() {
                    1 => format!("the slot `{}`", commands::slot(0, 1)),
                    n => format!("a slot for each (`{}` to `{}`)", commands::slot(0, n), commands::slot(n - 1, n)),
                },
                checks = match &migration.shard_key {
                    Some(key) => format!("; the old database must have tables with the column `{key}`"),
                    None => String::new(),
                }
            ),
            Some("a restart of the old database (~10 s) when it does not listen on its private address yet".to_owned()),
            None,
        ),
        Step::Clone => (
            format!(
                "copy the whole old database to {new} over the private network (pg_basebackup through the \
                 slot); {each} then streams every new write from it as a replica"
            ),
            None,
            None,
        ),
        Step::CatchUp => {
            (format!("wait until {each} has replayed what the old database wrote (the lag is shown)"), None, None)
        }
        Step::Switchover => (
            format!(
                "pause writes: the old database turns read-only and stops, {each} is promoted once it has every \
                 committed change, then runs its setup and starts PgBouncer; the old database is kept stopped"
            ),
            Some("writes fail for a few seconds, until the application uses the new outputs".to_owned()),
            (!migration.outputs.is_empty()).then(|| {
                format!(
                    "switch to the new {}: restart it with the values of `terrace output` after \
                     this apply, or from the --migration-hook at step `switchover` (TERRACE_OUTPUTS)",
                    migration.outputs.join(", ")
                )
            }),
        ),
        Step::Pause | Step::Copy | Step::Prune | Step::Resume => (String::new(), None, None),
        Step::Split => {
            let key = migration.shard_key.as_deref().unwrap_or("organization_id");
            let count = migration.to.len();
            (
                format!(
                    "on each shard i of {count}, delete the rows of every table with the column `{key}` whose \
                     organization the rule routes elsewhere: {} <> i; tables without the column are reference \
                     tables, kept whole on every shard",
                    commands::route_sql(key, count)
                ),
                None,
                Some(
                    "route each organization by the SHARD_MAP from the switchover on: a shard answers only for \
                     the organizations routed to it once this step is done"
                        .to_owned(),
                ),
            )
        }
    };
    planned_step(migration, step, done, (summary, downtime, app_action))
}

fn planned_step(
    migration: &Migration,
    step: Step,
    done: Option<Step>,
    (summary, downtime, app_action): (String, Option<String>, Option<String>),
) -> PlannedStep {
    let steps = migration.motion.steps();
    let done = done.is_some_and(|done| Step::position(steps, step) <= Step::position(steps, done));
    PlannedStep { step, summary, downtime, app_action, done }
}

/// The steps of a rebalance (N shards into M).
fn rebalance_step(migration: &Migration, step: Step, done: Option<Step>) -> PlannedStep {
    let key = migration.shard_key.as_deref().unwrap_or("organization_id");
    let (before, after) = (migration.from_shards.len(), migration.to.len());
    let new: Vec<String> = migration.to.iter().skip(before).map(|t| format!("`{}`", t.service)).collect();
    let gone: Vec<String> = migration.from_shards.iter().skip(after).map(|t| format!("`{}`", t.service)).collect();
    let paused = "writes fail (read-only) from here until `resume`".to_owned();
    let texts = match step {
        Step::Prepare => (
            format!(
                "check every shard (same major version, room for the rows that come in, tables with the column \
                 `{key}`, and every row on the shard the rule of {before} routes it to), and count the rows \
                 each shard of {after} gets"
            ),
            None,
            None,
        ),
        Step::Pause => {
            ("every shard turns read-only and ends the application's sessions".to_owned(), Some(paused.clone()), None)
        }
        Step::Copy => (
            format!(
                "the shards read each other over the private network (the replication role with \
                 pg_read_all_data, a pg_hba.conf line per shard, until the switchover); each shard i of {after} \
                 copies in, in one transaction, the rows of every table with `{key}` that {} = i routes to it \
                 from the shards that hold them{}",
                commands::route_sql(key, after),
                if new.is_empty() {
                    String::new()
                } else {
                    let verb = if new.len() == 1 { "gets" } else { "get" };
                    format!("; {} first {verb} the schema and the reference tables", new.join(", "))
                }
            ),
            Some(paused.clone()),
            None,
        ),
        Step::Prune => (
            format!(
                "each shard that stays deletes, in one transaction, the organizations routed elsewhere{}",
                if gone.is_empty() { String::new() } else { format!("; {} keep theirs", gone.join(", ")) }
            ),
            Some(paused.clone()),
            None,
        ),
        Step::Switchover => (
            if gone.is_empty() {
                "the outputs name the shards of the new count".to_owned()
            } else {
                format!("the outputs name the shards of the new count; {} stop, kept read-only", gone.join(", "))
            },
            Some(paused),
            Some(format!(
                "route by the new {}: restart it with the values of `terrace output` after this apply, or from \
                 the --migration-hook at step `switchover` (TERRACE_OUTPUTS), before writes resume",
                migration.outputs.join(", ")
            )),
        ),
        Step::Resume => ("every shard of the new count turns writable again".to_owned(), None, None),
        Step::Clone | Step::CatchUp | Step::Split => (String::new(), None, None),
    };
    planned_step(migration, step, done, texts)
}
