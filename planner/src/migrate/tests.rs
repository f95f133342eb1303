use super::*;

#[test]
fn steps_run_in_order_and_resume_after_the_last_one_done() {
    assert_eq!(Step::after(&Step::MOVE, None).collect::<Vec<_>>(), Step::MOVE);
    assert_eq!(Step::after(&Step::MOVE, Some(Step::Clone)).collect::<Vec<_>>(), [Step::CatchUp, Step::Switchover]);
    assert_eq!(Step::after(&Step::MOVE, Some(Step::Switchover)).count(), 0);
    // A reshard has one step more: the split after the switchover.
    assert_eq!(Step::after(Motion::Reshard.steps(), Some(Step::Switchover)).collect::<Vec<_>>(), [Step::Split]);
    // A rebalance pauses writes before it copies, and resumes them after the switchover.
    assert_eq!(
        Step::after(Motion::Rebalance.steps(), Some(Step::Copy)).collect::<Vec<_>>(),
        [Step::Prune, Step::Switchover, Step::Resume]
    );
    assert!(Step::switched(Motion::Rebalance.steps(), Step::Resume));
    assert!(!Step::switched(Motion::Rebalance.steps(), Step::Prune));
    assert!(!Step::switched(Motion::Reshard.steps(), Step::CatchUp));
}

fn record() -> Record {
    Record {
        from: "postgres.main.host.shared".into(),
        to: vec!["postgres.main.host.primary".into()],
        shard_key: None,
        from_shards: Vec::new(),
        step: Some(Step::CatchUp),
        kept: vec!["postgres.main.volume.data".into()],
        started: "2026-12-04T12:00:00Z".into(),
        finished: None,
    }
}

#[test]
fn a_record_reads_back_and_an_unknown_step_is_an_error() {
    let record = record();
    let mut state = State::new(None);
    let service: Address = "postgres.main".parse().expect("an address");
    state.migrations.insert(service.to_string(), record.to_json());
    assert_eq!(Record::of(&state, &service), Ok(Some(record.clone())));
    assert!(!record.done());
    state.migrations.insert(service.to_string(), serde_json::json!({"step": "sideways"}));
    assert!(Record::of(&state, &service).is_err());
}

#[test]
fn a_record_of_one_target_reads_as_a_string_too_and_a_reshard_is_done_after_its_split() {
    let mut json = record().to_json();
    json["to"] = serde_json::json!("postgres.main.host.primary");
    let read: Record = serde_json::from_value(json).expect("a record with one host as a string");
    assert_eq!(read, record());
    assert!(record().to_json().get("shard_key").is_none(), "a move writes no shard key");

    let mut reshard = record();
    reshard.shard_key = Some("organization_id".into());
    reshard.step = Some(Step::Switchover);
    assert!(!reshard.done(), "a reshard still splits after its switchover");
    reshard.step = Some(Step::Split);
    assert!(reshard.done());
    let mut moved = record();
    moved.step = Some(Step::Switchover);
    assert!(moved.done());
    assert!(record().to_json().get("from_shards").is_none(), "a move writes no shards before");

    let mut rebalance = reshard.clone();
    rebalance.from_shards = vec!["postgres.shard[0].host.primary".into(), "postgres.shard[1].host.primary".into()];
    assert_eq!(rebalance.motion(), Motion::Rebalance);
    assert!(!rebalance.done(), "a rebalance resumes writes after its switchover");
    rebalance.step = Some(Step::Resume);
    assert!(rebalance.done());
    let read: Record = serde_json::from_value(rebalance.to_json()).expect("a rebalance record reads back");
    assert_eq!(read, rebalance);
}

#[test]
fn live_counts_say_what_each_shard_holds_after_and_what_moves() {
    use commands::Routed;
    let shard = |rows: Vec<u64>, keys: Vec<u64>| Routed { tables: 3, keyed: 2, rows, keys, rows_before: Vec::new() };
    // Two shards into three: old shard 0 keeps what the new rule routes to 0, and so on.
    let counts = [shard(vec![400, 300, 390], vec![40, 30, 39]), shard(vec![300, 420, 200], vec![30, 42, 20])];
    let live = Live::from_counts(&counts, Motion::Rebalance);
    assert_eq!(live.rows, [700, 720, 590]);
    assert_eq!(live.organizations, [70, 72, 59]);
    assert_eq!((live.moving_rows, live.moving_organizations), (300 + 390 + 300 + 200, 30 + 39 + 30 + 20));
    // A reshard moves everything out of the one old database.
    let live = Live::from_counts(&counts[..1], Motion::Reshard);
    assert_eq!((live.moving_rows, live.moving_organizations), (1090, 109));
}

#[test]
fn the_plan_refuses_a_move_to_another_major_version_or_a_volume_too_small_for_the_live_data() {
    use std::path::Path;

    use crate::compile::VarInputs;
    use crate::pipeline::load;
    use terrace_providers::pricing::Catalog;

    let stack = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../phases")).stack.expect("the phases load");
    let (compiled, _) = crate::compile::compile(&stack, "managed-db", &VarInputs::default(), &Catalog::embedded());
    let compiled = compiled.expect("managed-db compiles");
    let addr = |a: &str| a.parse::<Address>().expect("an address");
    let from = addr("postgres.main.host.shared");
    let migration = Migration {
        service: addr("postgres.main"),
        motion: Motion::Move,
        from: from.clone(),
        from_server: Some(addr("server.app")),
        from_shards: Vec::new(),
        to: vec![Target {
            service: addr("postgres.main"),
            host: addr("postgres.main.host.primary"),
            server: Some(addr("postgres.main.server.primary")),
        }],
        shard_key: None,
        status: Status::Starts,
        steps: Vec::new(),
        kept: Vec::new(),
        outputs: Vec::new(),
        live: None,
        kept_until: None,
    };
    let mut prior = State::new(None);
    let mut host = terrace_state::ResourceState::new("host");
    host.attributes.insert("version".into(), serde_json::json!(16));
    prior.resources.insert(from.to_string(), host);
    let facts = |version_num: u32, bytes: u64| commands::Facts {
        version_num,
        data_directory: "/mnt/postgres/16/main".into(),
        in_recovery: false,
        bytes,
        available: 1 << 40,
    };
    // The state and the phase agree (16): nothing to say.
    assert_eq!(checks::versions(&compiled, &prior, &migration), Vec::<String>::new());
    assert_eq!(checks::live(&compiled, &prior, &migration, &from, &facts(160_004, 1 << 30)), Vec::<String>::new());
    // Upgraded by hand behind terrace's back: the live version says it.
    let refused = checks::live(&compiled, &prior, &migration, &from, &facts(170_002, 1 << 30));
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains("runs PostgreSQL 17 (read live), and this phase declares `postgres.main.host.primary` 16")
    );
    // The state already says it: the live read does not say it twice.
    prior
        .resources
        .get_mut(&from.to_string())
        .expect("host")
        .attributes
        .insert("version".into(), serde_json::json!(17));
    assert_eq!(checks::versions(&compiled, &prior, &migration).len(), 1);
    assert!(checks::live(&compiled, &prior, &migration, &from, &facts(170_002, 1 << 30)).is_empty());
    // 45 GB of data, and a copy needs a tenth more, on a 40 GB volume (the phase's storage_gb).
    let refused = checks::live(&compiled, &prior, &migration, &from, &facts(170_002, 45_000_000_000));
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("gets a volume of 40 GB"), "{}", refused[0]);
    assert!(refused[0].contains("raise `storage_gb` to at least 50"), "{}", refused[0]);
    // A prepared migration checks nothing more.
    let mut prepared = migration.clone();
    prepared.status = Status::Resumes;
    prepared.steps =
        vec![PlannedStep { step: Step::Prepare, summary: String::new(), downtime: None, app_action: None, done: true }];
    assert!(checks::versions(&compiled, &prior, &prepared).is_empty());
}

#[test]
fn a_record_notes_when_it_finished_and_keeps_its_copy_that_many_days_from_then() {
    let mut record = record();
    record.did(Step::CatchUp);
    assert_eq!(record.finished, None, "not the last step");
    record.did(Step::Switchover);
    let finished = record.finished.clone().expect("the last step notes the time");
    let at = humantime::parse_rfc3339(&finished).expect("RFC 3339");
    assert_eq!(record.kept_until(7), at.checked_add(std::time::Duration::from_secs(7 * 86_400)));
    // Done again (a resumed apply), the first time stays.
    record.did(Step::Switchover);
    assert_eq!(record.finished.as_deref(), Some(finished.as_str()));
    // A record from before `finished` counts from its start.
    let mut old = self::record();
    old.step = Some(Step::Switchover);
    let started = humantime::parse_rfc3339("2026-12-04T12:00:00Z").expect("a time");
    assert_eq!(old.kept_until(0), Some(started));
    assert_eq!(old.kept_until(u64::MAX), None, "beyond what time can say: never");
    let read: Record = serde_json::from_value(record.to_json()).expect("reads back");
    assert_eq!(read, record);
}
