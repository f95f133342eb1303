//! Finding a plan's data migrations: moves and reshards the phase starts, and those the state
//! records; and the texts of their steps. Pure functions of the compiled phase and the state.

use std::collections::BTreeSet;

use terrace_state::State;

use super::{Migration, PlannedStep, Record, Status, Step, Target, commands};
use crate::addr::Address;
use crate::kind::Kind;
use crate::model::Compiled;

/// The migrations of a plan: moves of a `postgres` service's primary to another host, reshards of
/// a removed service into new shards, and those the state records. Returns them with the reasons
/// a plan may not be applied.
pub fn detect(desired: &Compiled, prior: &State, finish: bool) -> (Vec<Migration>, Vec<String>) {
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
    let (from, done, status, kept) = match Record::of(prior, service)? {
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
    Ok(Some(migration(desired, prior, service, from, vec![target], None, status, done, kept)))
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
        let from: Address = record.from.parse().map_err(|_| format!("the migration of `{source}` names no host"))?;
        let mut targets = Vec::new();
        for host in &record.to {
            let host: Address =
                host.parse().map_err(|_| format!("the migration of `{source}` names no host: {json}"))?;
            if !desired.resources.contains(&host) {
                return Err(format!(
                    "`{source}` is being resharded into `{host}`, which this phase does not have: apply the phase \
                     the reshard started in, and `terrace apply --finish-migration`, before changing the shards"
                ));
            }
            let service = host.parent().unwrap_or_else(|| host.clone());
            started_into.insert(service.block());
            targets.push(target(desired, service, host));
        }
        let kept = record.kept.iter().filter_map(|a| a.parse().ok()).filter(|a| recorded(prior, a)).collect();
        let status = status_of(&record, finish);
        found.push(migration(desired, prior, &service, from, targets, Some(key), status, record.step, kept));
    }
    // New reshards: a sharded block none of whose shards is recorded yet, and exactly one removed
    // service with a primary to fill it from.
    let mut blocks = BTreeSet::new();
    for composite in desired.composites.iter().filter(|c| c.kind == Kind::Postgres) {
        let Some(key) = composite.attrs.get("shard_key").and_then(crate::value::Value::as_str) else { continue };
        let block = composite.address.block();
        if started_into.contains(&block) || !blocks.insert(block.clone()) {
            continue;
        }
        let shards: Vec<&Address> =
            desired.composites.iter().filter(|c| c.address.block() == block).map(|c| &c.address).collect();
        if shards.iter().any(|shard| recorded_within(prior, shard, true).next().is_some()) {
            continue;
        }
        let [source] = &removed_primaries(desired, prior)[..] else { continue };
        let source = source.clone();
        let Some(from) = primary_host(&source, |a| recorded_id(prior, a) && is_primary(prior, a)) else { continue };
        let targets: Vec<Target> = shards
            .iter()
            .filter_map(|shard| primary_host(shard, |a| desired.resources.contains(a)).map(|h| (shard, h)))
            .map(|(shard, host)| target(desired, (*shard).clone(), host))
            .collect();
        if targets.len() != shards.len() {
            continue;
        }
        let kept = recorded_within(prior, &source, false).collect();
        found.push(migration(desired, prior, &source, from, targets, Some(key.to_owned()), Status::Starts, None, kept));
    }
    Ok(found)
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

#[allow(clippy::too_many_arguments)]
fn migration(
    desired: &Compiled,
    prior: &State,
    service: &Address,
    from: Address,
    to: Vec<Target>,
    shard_key: Option<String>,
    status: Status,
    done: Option<Step>,
    kept: Vec<Address>,
) -> Migration {
    let outputs = desired
        .outputs
        .iter()
        .filter(|o| o.value.references().iter().any(|r| to.iter().any(|t| r.address.is_within(&t.service))))
        .map(|o| o.name.clone())
        .collect();
    let mut migration = Migration {
        service: service.clone(),
        from_server: server_of_recorded(prior, &from),
        from,
        to,
        shard_key,
        status,
        steps: Vec::new(),
        kept,
        outputs,
    };
    let steps = Step::all(migration.shard_key.is_some());
    migration.steps = steps.iter().map(|step| planned(&migration, *step, done)).collect();
    migration
}

/// A sharded service whose shard count changes: how many organizations the seed's rule sends to
/// another shard. terrace does not move their rows between existing shards, so this is said
/// loudly, never left to a silent change of the shard map.
pub fn reshard_warnings(desired: &Compiled, prior: &State) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut seen = BTreeSet::new();
    for composite in desired.composites.iter().filter(|c| c.kind == Kind::Postgres) {
        let Some(key) = composite.attrs.get("shard_key").and_then(crate::value::Value::as_str) else { continue };
        let block = composite.address.block();
        if !seen.insert(block.clone()) {
            continue;
        }
        let now = desired.composites.iter().filter(|c| c.address.block() == block).count();
        let before: BTreeSet<&str> = prior
            .resources
            .values()
            .filter_map(|r| r.composite.as_deref())
            .filter(|c| c.parse::<Address>().is_ok_and(|a| a.block() == block))
            .collect();
        if before.is_empty() || before.len() == now {
            continue;
        }
        let share = crate::compile::shard::moving_share(before.len() as u32, now as u32);
        warnings.push(format!(
            "`{block}` goes from {} to {now} shards: the rule parseInt(md5({key})[0:8], 16) % {now} sends about \
             {:.0}% of the organizations to another shard, and terrace does not move their rows between existing \
             shards: the SHARD_MAP changes, and rows of a moved organization stay on the shard that has them",
            before.len(),
            share * 100.0
        ));
    }
    warnings
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
    PlannedStep { step, summary, downtime, app_action, done: done.is_some_and(|done| step <= done) }
}
