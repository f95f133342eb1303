use super::*;

#[test]
fn steps_run_in_order_and_resume_after_the_last_one_done() {
    assert_eq!(Step::after(&Step::MOVE, None).collect::<Vec<_>>(), Step::MOVE);
    assert_eq!(Step::after(&Step::MOVE, Some(Step::Clone)).collect::<Vec<_>>(), [Step::CatchUp, Step::Switchover]);
    assert_eq!(Step::after(&Step::MOVE, Some(Step::Switchover)).count(), 0);
    // A reshard has one step more: the split after the switchover.
    assert_eq!(Step::after(Step::all(true), Some(Step::Switchover)).collect::<Vec<_>>(), [Step::Split]);
}

fn record() -> Record {
    Record {
        from: "postgres.main.host.shared".into(),
        to: vec!["postgres.main.host.primary".into()],
        shard_key: None,
        step: Some(Step::CatchUp),
        kept: vec!["postgres.main.volume.data".into()],
        started: "2026-12-04T12:00:00Z".into(),
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
}
