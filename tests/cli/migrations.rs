//! Phase migrations: with the state of phase N recorded, `terrace plan --phase M` shows the
//! migration. Every step of the seed's path, 1 -> 2 -> 3 -> 4 -> 5, then 5 -> destroy, in all three
//! formats; and a second plan of the recorded phase shows no changes.

use super::cloud::Cloud;
use super::phases::with_shards;
use super::recorded::{record_phase, record_phase_from};
use super::support::{stack_copy, terrace};
use std::path::Path;

use terrace_state::{Backend, LocalBackend, State};

fn backend(dir: &Path) -> LocalBackend {
    LocalBackend::new(dir.join("terrace.state.json"))
}

/// Writes `state` over the recorded one, as its next serial.
fn replace_state(dir: &Path, state: &mut State) {
    state.serial = backend(dir).read().expect("read").map_or(1, |recorded| recorded.serial + 1);
    backend(dir).write(state).expect("the state");
}

const PATH: [&str; 5] = ["block-storage", "managed-db", "read-replicas", "sharding", "multi-region"];

#[test]
fn every_step_of_the_seed_path() {
    for pair in PATH.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let dir = stack_copy();
        record_phase(dir.path(), from);
        for format in ["text", "markdown", "json"] {
            let run = terrace(dir.path(), &["plan", "--phase", to, "--format", format, "--allow-data-loss"]);
            assert_eq!(run.code, 0, "{from} -> {to} ({format}):\n{}", run.stderr);
            insta::assert_snapshot!(format!("migrate_{from}_to_{to}_{format}"), run.stdout);
        }
    }
}

#[test]
fn destroying_the_last_phase() {
    let dir = stack_copy();
    record_phase(dir.path(), "multi-region");
    for format in ["text", "markdown", "json"] {
        let run = terrace(dir.path(), &["plan", "--destroy", "--format", format, "--allow-data-loss"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        insta::assert_snapshot!(format!("destroy_multi-region_{format}"), run.stdout);
    }
}

#[test]
fn a_recorded_phase_plans_no_changes() {
    for phase in PATH {
        let dir = stack_copy();
        record_phase(dir.path(), phase);
        let run = terrace(dir.path(), &["plan", "--detailed-exitcode", "--format", "json"]);
        let plan: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{phase}: {}", run.stderr));
        let changed: Vec<&serde_json::Value> =
            plan["resource_changes"].as_array().expect("changes").iter().filter(|c| c["action"] != "no_op").collect();
        assert!(changed.is_empty(), "{phase}: a second plan changes {changed:#?}");
        assert_eq!(run.code, 0, "{phase}: --detailed-exitcode with no changes exits 0");
        assert_eq!(plan["phase"]["name"], phase, "the phase defaults to the recorded one");
    }
}

#[test]
fn a_database_that_moves_is_migrated_and_one_that_is_removed_is_refused() {
    let dir = stack_copy();
    record_phase(dir.path(), "block-storage");
    // 1 -> 2: the database moves from the app server to its own; the plan carries its data.
    let run = terrace(dir.path(), &["plan", "--phase", "managed-db", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stdout.contains("DATA LOSS"), "{}", run.stdout);
    assert!(run.stdout.contains("Data migration: postgres.main moves to postgres.main.host.primary"), "{}", run.stdout);
    for step in ["1. prepare:", "2. clone:", "3. catch-up:", "4. switchover:"] {
        assert!(run.stdout.contains(step), "{step}:\n{}", run.stdout);
    }
    assert!(run.stdout.contains("postgres.main.volume.data"), "the old volume is kept:\n{}", run.stdout);
    // 3 -> 4 removes `postgres.main` for three new shards: its data is resharded into them.
    let dir = stack_copy();
    record_phase(dir.path(), "read-replicas");
    let run = terrace(dir.path(), &["plan", "--phase", "sharding", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stdout.contains("DATA LOSS"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Data migration: postgres.main is resharded into 3 shards by organization_id"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("5. split: on each shard i of 3"), "{}", run.stdout);
    assert!(run.stdout.contains("0 to destroy"), "the old database is kept:\n{}", run.stdout);
    // The same after a finished move of `postgres.main` (1 -> 2), whose record gives way.
    let mut moved = backend(dir.path()).read().expect("read").expect("a state");
    moved.migrations.insert(
        "postgres.main".to_owned(),
        serde_json::json!({"from": "postgres.main.host.shared", "to": "postgres.main.host.primary",
            "step": "switchover", "kept": [], "started": "2026-12-04T12:00:00Z"}),
    );
    replace_state(dir.path(), &mut moved);
    let again = terrace(dir.path(), &["plan", "--phase", "sharding", "--detailed-exitcode"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stdout.contains("postgres.main is resharded into 3 shards"), "{}", again.stdout);
    // A phase that removes the database and puts nothing in its place loses it: refused.
    let phase = "phase \"no-database\" {\n  extends = \"read-replicas\"\n  remove  = [\"postgres.main\", \
                 \"output.DB_HOST\", \"output.DB_READ_HOST\", \"output.DATABASE_URL\", \"output.RESTORE_PROCEDURE\"]\n}\n";
    std::fs::write(dir.path().join("no-database.hcl"), phase).expect("a phase file");
    let stack = std::fs::read_to_string(dir.path().join("terrace.hcl")).expect("the stack");
    let listed = stack.replacen("\"multi-region\"]", "\"multi-region\", \"no-database\"]", 1);
    assert_ne!(listed, stack, "the phase is listed");
    std::fs::write(dir.path().join("terrace.hcl"), listed).expect("the stack");
    let run = terrace(dir.path(), &["plan", "--phase", "no-database"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("`postgres.main.volume.primary`: this plan destroys it and loses its data"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("DATA LOSS"), "the plan is still shown:\n{}", run.stdout);
    let allowed = terrace(dir.path(), &["plan", "--phase", "no-database", "--allow-data-loss", "--detailed-exitcode"]);
    assert_eq!(allowed.code, 2, "{}", allowed.stderr);
}

#[test]
fn a_move_to_another_major_version_is_refused_before_anything_is_made() {
    let dir = stack_copy();
    record_phase(dir.path(), "block-storage");
    // The recorded old database runs 16; the phase declares 17 for the new server.
    let run = terrace(dir.path(), &["plan", "--phase", "managed-db", "--var", "postgres_version=17"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "`postgres.main`: the old database on `postgres.main.host.shared` runs PostgreSQL 16 (as recorded), and \
             this phase declares `postgres.main.host.primary` 17: a streaming copy needs the same major version"
        ),
        "{}",
        run.stderr
    );
    // Apply refuses it before it makes anything (the recorded objects are not in this cloud, so
    // it plans against the state as recorded).
    let cloud = Cloud::start(0);
    let apply = cloud.terrace(
        dir.path(),
        &[
            "apply",
            "--phase",
            "managed-db",
            "--var",
            "postgres_version=17",
            "--refresh=false",
            "--hosts=true",
            "--auto-approve",
        ],
    );
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.stderr.contains("a streaming copy needs the same major version"), "{}", apply.stderr);
    assert!(cloud.list("servers").is_empty(), "no server was made");
    let state = backend(dir.path()).read().expect("read").expect("a state");
    assert!(!state.resources.contains_key("postgres.main.server.primary"), "no new server was recorded");
    assert!(state.migrations.is_empty(), "no migration is recorded: {:?}", state.migrations);
    // The same version moves.
    let same = terrace(dir.path(), &["plan", "--phase", "managed-db", "--var", "postgres_version=16"]);
    assert_eq!(same.code, 0, "{}", same.stderr);
}

#[test]
fn a_finished_migration_keeps_the_old_copy_until_asked_to_delete_it() {
    let dir = stack_copy();
    let before = stack_copy();
    let old = record_phase_from(before.path(), "block-storage", 5000);
    let mut state = record_phase(dir.path(), "managed-db");
    let kept = ["postgres.main.host.shared", "postgres.main.keypair.shared", "postgres.main.volume.data"];
    for address in kept {
        state.resources.insert(address.to_owned(), old.resources[address].clone());
    }
    state.migrations.insert(
        "postgres.main".to_owned(),
        serde_json::json!({
            "from": "postgres.main.host.shared", "to": "postgres.main.host.primary", "step": "switchover",
            "kept": kept, "started": "2026-12-04T12:00:00Z",
        }),
    );
    replace_state(dir.path(), &mut state);
    let run = terrace(dir.path(), &["plan", "--phase", "managed-db", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "kept is not a change:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    assert!(run.stdout.contains("until terrace apply --finish-migration: postgres.main.host.shared"), "{}", run.stdout);
    // Still paid for: the old volume stays in the cost.
    assert!(run.stdout.contains("volume (2 -> 2)"), "{}", run.stdout);
    let status = terrace(dir.path(), &["migrate", "status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("step: switchover done (4 of 4)"), "{}", status.stdout);
    assert!(status.stdout.contains("finished: the new database is the primary"), "{}", status.stdout);
    assert!(
        status.stdout.contains("kept until `terrace apply --finish-migration`: postgres.main.host.shared"),
        "{}",
        status.stdout
    );
    let run = terrace(dir.path(), &["plan", "--phase", "managed-db", "--finish-migration", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for address in kept {
        assert!(run.stdout.contains(&format!("# {address} will be destroyed")), "{address}:\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("DATA LOSS"), "the data lives on the new host:\n{}", run.stdout);
    // A record that does not read is refused, never guessed at.
    state.migrations.insert("postgres.main".to_owned(), serde_json::json!({"step": "sideways"}));
    replace_state(dir.path(), &mut state);
    let run = terrace(dir.path(), &["plan", "--phase", "managed-db"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("the state's record of the migration of `postgres.main` is unreadable"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_move_to_another_network_zone_is_refused_before_anything_is_made() {
    let dir = stack_copy();
    record_phase(dir.path(), "block-storage");
    // The new database in Ashburn (us-east), where the private network (eu-central) has no subnet.
    let file = dir.path().join("managed-db.hcl");
    let phase = std::fs::read_to_string(&file).expect("the phase");
    let start = phase.find("postgres \"main\"").expect("the database");
    let (head, block) = phase.split_at(start);
    let moved = block.replacen("server_type = \"cpx22\"", "server_type = \"cpx21\"", 1).replacen(
        "location    = var.location",
        "location    = \"ash\"",
        1,
    );
    assert_ne!(moved, block, "the database is moved to ash");
    std::fs::write(&file, format!("{head}{moved}")).expect("the phase");
    let run = terrace(dir.path(), &["plan", "--phase", "managed-db"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "`postgres.main`: the new server `postgres.main.server.primary` is not on a private network of the old \
             server `server.app`"
        ) && run.stderr.contains("(nothing was changed)"),
        "{}",
        run.stderr
    );
}

/// The recorded managed-db phase with a finished move (1 -> 2) that finished `days_ago`, whose old
/// copy is kept; the phase sets `migration_keep_days = 7`.
fn kept_move(days_ago: u64) -> tempfile::TempDir {
    let dir = stack_copy();
    let before = stack_copy();
    let old = record_phase_from(before.path(), "block-storage", 5000);
    let mut state = record_phase(dir.path(), "managed-db");
    for address in KEPT {
        state.resources.insert(address.to_owned(), old.resources[address].clone());
    }
    let finished = std::time::SystemTime::now() - std::time::Duration::from_secs(days_ago * 86_400);
    state.migrations.insert(
        "postgres.main".to_owned(),
        serde_json::json!({
            "from": "postgres.main.host.shared", "to": "postgres.main.host.primary", "step": "switchover",
            "kept": KEPT, "started": "2026-01-04T12:00:00Z",
            "finished": humantime::format_rfc3339_seconds(finished).to_string(),
        }),
    );
    replace_state(dir.path(), &mut state);
    let file = dir.path().join("managed-db.hcl");
    let phase = std::fs::read_to_string(&file).expect("the phase");
    let kept = phase.replacen("  storage_gb  = 40\n", "  storage_gb  = 40\n  migration_keep_days = 7\n", 1);
    assert_ne!(kept, phase, "the retention is set");
    std::fs::write(&file, kept).expect("the phase");
    dir
}

const KEPT: [&str; 3] = ["postgres.main.host.shared", "postgres.main.keypair.shared", "postgres.main.volume.data"];

#[test]
fn a_retention_the_definition_sets_deletes_the_old_copy_once_it_has_passed() {
    // Finished a day ago: kept, and the plan says until when.
    let dir = kept_move(1);
    let run = terrace(dir.path(), &["plan", "--phase", "managed-db", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "kept is not a change:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("(migration_keep_days: the first apply from then deletes it)"), "{}", run.stdout);
    let json = terrace(dir.path(), &["plan", "--phase", "managed-db", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("a JSON plan");
    let migration = &plan["migrations"][0];
    assert_eq!(migration["status"], "kept", "{migration}");
    let until = migration["kept_until"].as_str().expect("kept_until");
    let until = humantime::parse_rfc3339(until).expect("RFC 3339");
    let left = until.duration_since(std::time::SystemTime::now()).expect("in the future").as_secs();
    assert!((5 * 86_400..=6 * 86_400).contains(&left), "6 days left, less the seconds this took: {left} s");
    // Finished eight days ago: the seven days have passed, and the plan deletes the old copy
    // without --finish-migration.
    let dir = kept_move(8);
    let run = terrace(dir.path(), &["plan", "--phase", "managed-db", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    for address in KEPT {
        assert!(run.stdout.contains(&format!("# {address} will be destroyed")), "{address}:\n{}", run.stdout);
    }
    assert!(run.stdout.contains("which has passed: this apply deletes the old copy"), "{}", run.stdout);
    assert!(!run.stdout.contains("DATA LOSS"), "the data lives on the new host:\n{}", run.stdout);
    let json = terrace(dir.path(), &["plan", "--phase", "managed-db", "--format", "json"]);
    assert!(json.stdout.contains("its migration_keep_days have passed"), "{}", json.stdout);
    // A retention that is not a whole number of days is an error at its line.
    let file = dir.path().join("managed-db.hcl");
    let phase = std::fs::read_to_string(&file).expect("the phase");
    std::fs::write(&file, phase.replace("migration_keep_days = 7", "migration_keep_days = -7")).expect("the phase");
    let run = terrace(dir.path(), &["validate"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("`migration_keep_days` must be a whole number from 0 to 3650, not -7")
            && run.stderr.contains("managed-db.hcl:59:25"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_change_of_shard_count_is_a_rebalance_with_the_share_that_moves() {
    let dir = stack_copy();
    record_phase(dir.path(), "sharding");
    with_shards(dir.path(), 4);
    let run = terrace(dir.path(), &["plan", "--phase", "sharding", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout.contains("Warning: `postgres.shard` goes from 3 to 4 shards")
            && run.stdout.contains("sends about 75% of the organizations to another shard"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("postgres.shard is rebalanced from 3 to 4 shards by organization_id"),
        "{}",
        run.stdout
    );
    for step in ["1. prepare:", "2. pause:", "3. copy:", "4. prune:", "5. switchover:", "6. resume:"] {
        assert!(run.stdout.contains(step), "{step}:\n{}", run.stdout);
    }
    for format in ["text", "markdown", "json"] {
        let run = terrace(dir.path(), &["plan", "--phase", "sharding", "--format", format]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        insta::assert_snapshot!(format!("rebalance_3_to_4_{format}"), run.stdout);
    }
    // 3 -> 2: the third shard's rows move to the two that stay; it is kept, not destroyed.
    let dir = stack_copy();
    record_phase(dir.path(), "sharding");
    with_shards(dir.path(), 2);
    let run = terrace(dir.path(), &["plan", "--phase", "sharding", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "no --allow-data-loss is needed:\n{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("DATA LOSS"), "{}", run.stdout);
    assert!(run.stdout.contains("postgres.shard is rebalanced from 3 to 2 shards"), "{}", run.stdout);
    assert!(run.stdout.contains("postgres.shard[2] keep theirs"), "{}", run.stdout);
    assert!(!run.stdout.contains("# postgres.shard[2].volume.primary will be destroyed"), "{}", run.stdout);
    assert!(run.stdout.contains("postgres.shard[2].volume.primary"), "kept:\n{}", run.stdout);
    // The recorded count planned again: no warning and no migration.
    let dir = stack_copy();
    record_phase(dir.path(), "sharding");
    let run = terrace(dir.path(), &["plan", "--phase", "sharding"]);
    assert!(!run.stdout.contains("shards: the rule") && !run.stdout.contains("rebalanced"), "{}", run.stdout);
}

#[test]
fn a_rebalance_resumes_keeps_the_emptied_shard_until_asked_and_status_names_its_step() {
    let dir = stack_copy();
    let mut state = record_phase(dir.path(), "sharding");
    with_shards(dir.path(), 2);
    let host = |i: u32| format!("postgres.shard[{i}].host.primary");
    let kept: Vec<String> = state.resources.keys().filter(|a| a.starts_with("postgres.shard[2].")).cloned().collect();
    assert!(!kept.is_empty());
    state.migrations.insert(
        "postgres.shard".to_owned(),
        serde_json::json!({
            "from": host(0), "from_shards": [host(0), host(1), host(2)], "to": [host(0), host(1)],
            "shard_key": "organization_id", "step": "copy", "kept": kept, "started": "2026-12-05T12:00:00Z",
        }),
    );
    replace_state(dir.path(), &mut state);
    let run = terrace(dir.path(), &["plan", "--phase", "sharding", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.contains("postgres.shard is being rebalanced (resumed) from 3 to 2 shards"), "{}", run.stdout);
    assert!(run.stdout.contains("3. copy:") && run.stdout.contains("(done)"), "{}", run.stdout);
    let status = terrace(dir.path(), &["migrate", "status"]);
    assert!(status.stdout.contains("rebalanced by organization_id from 3 shards"), "{}", status.stdout);
    assert!(status.stdout.contains("step: copy done (3 of 6)"), "{}", status.stdout);
    assert!(status.stdout.contains("next: prune"), "{}", status.stdout);
    // Under way, the shard count cannot change again.
    with_shards(dir.path(), 4);
    let run = terrace(dir.path(), &["plan", "--phase", "sharding"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("is being rebalanced into 2 shards, and this phase has 4"), "{}", run.stderr);
    // Finished: the emptied shard is kept, and --finish-migration deletes it with no refusal.
    with_shards(dir.path(), 2);
    state.migrations.get_mut("postgres.shard").expect("the record")["step"] = "resume".into();
    replace_state(dir.path(), &mut state);
    let run = terrace(dir.path(), &["plan", "--phase", "sharding"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("postgres.shard was rebalanced from 3 to 2 shards"), "{}", run.stdout);
    assert!(
        run.stdout.contains("until terrace apply --finish-migration: postgres.shard[2]."),
        "the emptied shard is kept:\n{}",
        run.stdout
    );
    assert!(!run.stdout.contains("postgres.shard[2].volume.primary will be destroyed"), "{}", run.stdout);
    assert!(!run.stdout.contains("Warning: `postgres.shard` goes from"), "{}", run.stdout);
    let status = terrace(dir.path(), &["migrate", "status"]);
    assert!(status.stdout.contains("step: resume done (6 of 6)"), "{}", status.stdout);
    let run = terrace(dir.path(), &["plan", "--phase", "sharding", "--finish-migration", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.contains("# postgres.shard[2].volume.primary will be destroyed"), "{}", run.stdout);
    assert!(!run.stdout.contains("DATA LOSS"), "{}", run.stdout);
}

#[test]
fn a_finished_reshard_keeps_the_old_database_until_asked_and_status_names_the_shards() {
    let dir = stack_copy();
    let before = stack_copy();
    let old = record_phase_from(before.path(), "read-replicas", 5000);
    let mut state = record_phase(dir.path(), "sharding");
    let kept: Vec<String> = old.resources.keys().filter(|a| a.starts_with("postgres.main.")).cloned().collect();
    for address in &kept {
        state.resources.insert(address.clone(), old.resources[address].clone());
    }
    let shards: Vec<String> = (0..3).map(|i| format!("postgres.shard[{i}].host.primary")).collect();
    state.migrations.insert(
        "postgres.main".to_owned(),
        serde_json::json!({
            "from": "postgres.main.host.primary", "to": shards, "shard_key": "organization_id", "step": "split",
            "kept": kept, "started": "2026-12-05T12:00:00Z",
        }),
    );
    replace_state(dir.path(), &mut state);
    let run = terrace(dir.path(), &["plan", "--phase", "sharding", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "kept is not a change:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("postgres.main was resharded into 3 shards by organization_id"), "{}", run.stdout);
    assert!(
        run.stdout.contains("until terrace apply --finish-migration: postgres.main.firewall.postgres"),
        "{}",
        run.stdout
    );
    let status = terrace(dir.path(), &["migrate", "status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stdout.contains("resharded by organization_id into 3 shards: postgres.shard[0].host.primary"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("step: split done (5 of 5)"), "{}", status.stdout);
    // A reshard under way that this phase no longer has a shard of is refused.
    let mut under_way = state.clone();
    let record = under_way.migrations.get_mut("postgres.main").expect("the record");
    record["step"] = "clone".into();
    record["to"] = serde_json::json!(["postgres.shard[0].host.primary", "postgres.shard[5].host.primary"]);
    replace_state(dir.path(), &mut under_way);
    let run = terrace(dir.path(), &["plan", "--phase", "sharding"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("is being resharded into `postgres.shard[5].host.primary`"), "{}", run.stderr);
    // --finish-migration deletes the old database, with no data-loss refusal: its data is on the shards.
    replace_state(dir.path(), &mut state);
    let run = terrace(dir.path(), &["plan", "--phase", "sharding", "--finish-migration", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for address in ["postgres.main.server.primary", "postgres.main.volume.primary", "postgres.main.volume.replica[0]"] {
        assert!(run.stdout.contains(&format!("# {address} will be destroyed")), "{address}:\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("DATA LOSS"), "{}", run.stdout);
}
