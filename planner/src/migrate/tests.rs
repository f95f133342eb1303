use super::*;

#[test]
fn steps_run_in_order_and_resume_after_the_last_one_done() {
    assert_eq!(Step::after(None).collect::<Vec<_>>(), Step::ALL);
    assert_eq!(Step::after(Some(Step::Clone)).collect::<Vec<_>>(), [Step::CatchUp, Step::Switchover]);
    assert_eq!(Step::after(Some(Step::Switchover)).count(), 0);
}

#[test]
fn a_record_reads_back_and_an_unknown_step_is_an_error() {
    let record = Record {
        from: "postgres.main.host.shared".into(),
        to: "postgres.main.host.primary".into(),
        step: Some(Step::CatchUp),
        kept: vec!["postgres.main.volume.data".into()],
        started: "2026-12-04T12:00:00Z".into(),
    };
    let mut state = State::new(None);
    let service: Address = "postgres.main".parse().expect("an address");
    state.migrations.insert(service.to_string(), record.to_json());
    assert_eq!(Record::of(&state, &service), Ok(Some(record.clone())));
    assert!(!record.done());
    state.migrations.insert(service.to_string(), serde_json::json!({"step": "sideways"}));
    assert!(Record::of(&state, &service).is_err());
}
