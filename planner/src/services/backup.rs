//! Backups of a PostgreSQL primary to an S3 bucket: daily or hourly `pg_dump`s uploaded with
//! s3cmd and pruned by age, optionally WAL archiving with pgBackRest for point-in-time recovery,
//! and the restore procedure that terrace prints and its tests run.

use super::postgres::{
    CLUSTER, CLUSTER_SCRIPT, PGBOUNCER_INI, PORT, SOCKET_DIR, data_directory, postgres_file, root_file,
};
use super::shell::sh;
use super::{BackupSchedule, BackupSpec, File, PgRole, PostgresSpec};

pub(crate) const S3CFG: &str = "/etc/terrace/backup/s3cfg";
pub(crate) const BACKUP_SCRIPT: &str = "/usr/local/sbin/terrace-backup";
pub(crate) const PGBACKREST_CONF: &str = "/etc/pgbackrest/pgbackrest.conf";
/// Starts a full pgBackRest backup without waiting for it.
pub(crate) const START_FULL_BACKUP: &str = "systemctl start --no-block terrace-pgbackrest@full.service";
/// The pgBackRest backup units, one by one (systemctl's patterns match only loaded units).
pub(crate) const PGBACKREST_BACKUP_UNITS: &str = "terrace-pgbackrest@full.service terrace-pgbackrest@diff.service";

/// A pgBackRest command on the cluster's stanza, as the `postgres` user.
pub(crate) fn pgbackrest_command(command: &str) -> String {
    format!("runuser -u postgres -- pgbackrest --stanza={CLUSTER} {command}")
}

/// The packages, files and first-boot commands of the backups.
pub(crate) struct Parts {
    pub(crate) packages: Vec<String>,
    pub(crate) files: Vec<File>,
    pub(crate) runcmd: Vec<String>,
}

/// An S3 endpoint split into what s3cmd and pgBackRest take separately.
struct Endpoint<'a> {
    https: bool,
    /// The host with its port, if any.
    authority: &'a str,
    host: &'a str,
    port: Option<&'a str>,
}

fn endpoint(backup: &BackupSpec) -> Endpoint<'_> {
    let (https, rest) = match backup.endpoint.split_once("://") {
        Some(("http", rest)) => (false, rest),
        Some((_, rest)) => (true, rest),
        None => (true, backup.endpoint.as_str()),
    };
    let authority = rest.trim_end_matches('/');
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => (host, Some(port)),
        _ => (authority, None),
    };
    Endpoint { https, authority, host, port }
}

fn dump_folder(backup: &BackupSpec) -> String {
    format!("s3://{}/{}/dump/", backup.bucket, backup.prefix)
}

pub(crate) fn problems(spec: &PostgresSpec, backup: &BackupSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if !matches!(spec.role, PgRole::Primary { .. }) {
        problems.push("backups are taken on the primary only".into());
    }
    let plain =
        |value: &str| !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b'\'' && b != b'"');
    for (what, value) in [
        ("bucket", &backup.bucket),
        ("region", &backup.region),
        ("access key", &backup.access_key),
        ("secret key", &backup.secret_key),
        ("prefix", &backup.prefix),
    ] {
        if !plain(value) {
            problems.push(format!("the backup {what} must be printable, without spaces or quotes"));
        }
    }
    if backup.prefix.starts_with('/') || backup.prefix.ends_with('/') {
        problems.push("the backup prefix must not start or end with `/`".into());
    }
    let end = endpoint(backup);
    if !backup.endpoint.contains("://") || end.host.is_empty() || end.authority.contains('/') {
        problems.push(format!(
            "the backup endpoint `{}` must be a URL like https://fsn1.your-objectstorage.com",
            backup.endpoint
        ));
    }
    if backup.retention_days == 0 {
        problems.push("the backup retention must be at least one day".into());
    }
    if backup.continuous && !end.https {
        problems.push("continuous backups (pgBackRest) need an https endpoint".into());
    }
    if backup.continuous && backup.pitr_days == 0 {
        problems.push("point-in-time recovery needs at least one day (`pitr_days`)".into());
    }
    problems
}

pub(crate) fn render(spec: &PostgresSpec, backup: &BackupSpec) -> Parts {
    let end = endpoint(backup);
    let (calendar, every) = match backup.schedule {
        BackupSchedule::Daily => ("*-*-* 02:00:00 UTC", "daily at 02:00 UTC"),
        BackupSchedule::Hourly => ("*-*-* *:00:00 UTC", "hourly"),
    };
    let mut parts = Parts {
        packages: vec!["s3cmd".into()],
        files: vec![
            postgres_file(
                S3CFG,
                "0600",
                format!(
                    "# terrace: s3cmd's access to the backup bucket. Path-style requests, which every S3\n\
                     # endpoint takes (host_bucket without %(bucket)s).\n\
                     [default]\n\
                     access_key = {access}\n\
                     secret_key = {secret}\n\
                     host_base = {host}\n\
                     host_bucket = {host}\n\
                     bucket_location = {region}\n\
                     use_https = {https}\n\
                     check_ssl_certificate = True\n\
                     signature_v2 = False\n",
                    access = backup.access_key,
                    secret = backup.secret_key,
                    host = end.authority,
                    region = backup.region,
                    https = if end.https { "True" } else { "False" },
                ),
            ),
            root_file(BACKUP_SCRIPT, "0755", backup_script(spec, backup)),
            root_file(
                "/etc/systemd/system/terrace-backup.service",
                "0644",
                format!(
                    "# terrace: one logical backup of the database {database}; see {BACKUP_SCRIPT}.\n\
                     [Unit]\n\
                     Description=terrace: backup of PostgreSQL database {database} to object storage\n\
                     Wants=network-online.target\n\
                     After=network-online.target postgresql.service\n\
                     \n\
                     [Service]\n\
                     Type=oneshot\n\
                     User=postgres\n\
                     Group=postgres\n\
                     ExecStart={BACKUP_SCRIPT}\n\
                     Nice=10\n",
                    database = spec.database,
                ),
            ),
            root_file(
                "/etc/systemd/system/terrace-backup.timer",
                "0644",
                format!(
                    "# terrace: the backup of {database}, {every}; a run missed while the server was off is\n\
                     # made up at the next boot.\n\
                     [Unit]\n\
                     Description=terrace: backup of PostgreSQL database {database}, {every}\n\
                     \n\
                     [Timer]\n\
                     OnCalendar={calendar}\n\
                     Persistent=true\n\
                     \n\
                     [Install]\n\
                     WantedBy=timers.target\n",
                    database = spec.database,
                ),
            ),
        ],
        runcmd: vec!["systemctl daemon-reload".into(), "systemctl enable --now terrace-backup.timer".into()],
    };
    if backup.continuous {
        parts.packages.push("pgbackrest".into());
        parts.files.push(postgres_file(PGBACKREST_CONF, "0640", pgbackrest_conf(spec, backup, &end)));
        parts.files.push(root_file(
            "/etc/systemd/system/terrace-pgbackrest@.service",
            "0644",
            format!(
                "# terrace: a pgBackRest backup of the stanza {CLUSTER}, of the type after the @ (full or diff).\n\
                 [Unit]\n\
                 Description=terrace: pgBackRest %i backup of PostgreSQL\n\
                 Wants=network-online.target\n\
                 After=network-online.target postgresql.service\n\
                 \n\
                 [Service]\n\
                 Type=oneshot\n\
                 User=postgres\n\
                 Group=postgres\n\
                 ExecStart=/usr/bin/pgbackrest --stanza={CLUSTER} --type=%i backup\n\
                 Nice=10\n"
            ),
        ));
        for (kind, calendar, when) in [
            ("full", "Sun *-*-* 01:00:00 UTC", "on Sundays"),
            ("diff", "Mon..Sat *-*-* 01:00:00 UTC", "on the other days"),
        ] {
            parts.files.push(root_file(
                &format!("/etc/systemd/system/terrace-pgbackrest-{kind}.timer"),
                "0644",
                format!(
                    "# terrace: the {kind} pgBackRest backup, {when} at 01:00 UTC; with the archived WAL it allows\n\
                     # recovery to any time since the oldest full backup kept.\n\
                     [Unit]\n\
                     Description=terrace: pgBackRest {kind} backup, {when}\n\
                     \n\
                     [Timer]\n\
                     OnCalendar={calendar}\n\
                     Persistent=true\n\
                     Unit=terrace-pgbackrest@{kind}.service\n\
                     \n\
                     [Install]\n\
                     WantedBy=timers.target\n"
                ),
            ));
        }
        // The stanza is created once PostgreSQL runs; until then archive_command fails and
        // PostgreSQL keeps the WAL and retries. The first full backup starts at once, so that
        // recovery is possible from the first day on.
        parts.runcmd.extend([
            pgbackrest_command("stanza-create"),
            "systemctl enable --now terrace-pgbackrest-full.timer terrace-pgbackrest-diff.timer".into(),
            START_FULL_BACKUP.into(),
        ]);
    }
    parts
}

fn backup_script(spec: &PostgresSpec, backup: &BackupSpec) -> String {
    format!(
        r#"#!/bin/bash
# terrace: a logical backup of the database {database}: pg_dump (custom format, compressed), checked,
# uploaded to {folder} under the time it was taken, then the dumps older than {days} days are
# deleted. Run as postgres by terrace-backup.service. Any failure stops it before the pruning, so a
# failing backup never deletes the older ones.
set -euo pipefail
umask 077

database={database}
s3cfg={s3cfg}
folder={folder_word}
retention_days={days}

taken=$(date -u +%Y%m%dT%H%M%SZ)
name="$database-$taken.dump"
work=$(mktemp -d /var/tmp/terrace-backup.XXXXXX)
trap 'rm -rf "$work"' EXIT

pg_dump --host={SOCKET_DIR} --port={PORT} --format=custom --compress=6 --dbname="$database" --file="$work/$name"
# A dump that pg_restore cannot read is no backup.
pg_restore --list "$work/$name" > /dev/null
s3cmd --config="$s3cfg" --no-progress put "$work/$name" "$folder$name"
echo "terrace-backup: uploaded $folder$name ($(stat -c %s "$work/$name") bytes)"

# The time a dump was taken is in its name, which sorts like the time itself; object dates are
# not used, since a copied or re-uploaded dump would get a new one.
cutoff=$(date -u -d "$retention_days days ago" +%Y%m%dT%H%M%SZ)
s3cmd --config="$s3cfg" ls "$folder" | while read -r _day _time _size url; do
  object=${{url##*/}}
  stamp=${{object#"$database-"}}
  stamp=${{stamp%.dump}}
  if [[ $object == "$database-"*.dump && $stamp =~ ^[0-9]{{8}}T[0-9]{{6}}Z$ && $stamp < $cutoff ]]; then
    s3cmd --config="$s3cfg" --no-progress del "$url"
  fi
done
"#,
        database = spec.database,
        folder = dump_folder(backup),
        folder_word = sh(&dump_folder(backup)),
        s3cfg = sh(S3CFG),
        days = backup.retention_days,
    )
}

fn pgbackrest_conf(spec: &PostgresSpec, backup: &BackupSpec, end: &Endpoint<'_>) -> String {
    let port = end.port.map(|port| format!("repo1-storage-port={port}\n")).unwrap_or_default();
    format!(
        "# terrace: pgBackRest's repository in the backup bucket, for WAL archiving (archive_command) and\n\
         # physical backups. Full backups are kept for {pitr} days, so recovery is possible to any time\n\
         # in the last {pitr} days.\n\
         [global]\n\
         repo1-type=s3\n\
         repo1-s3-endpoint={host}\n\
         {port}\
         repo1-s3-bucket={bucket}\n\
         repo1-s3-region={region}\n\
         repo1-s3-key={access}\n\
         repo1-s3-key-secret={secret}\n\
         repo1-s3-uri-style=path\n\
         repo1-path=/{prefix}/pgbackrest\n\
         repo1-retention-full-type=time\n\
         repo1-retention-full={pitr}\n\
         compress-type=lz4\n\
         process-max={processes}\n\
         start-fast=y\n\
         log-level-console=info\n\
         log-level-file=detail\n\
         \n\
         [{CLUSTER}]\n\
         pg1-path={data}\n\
         pg1-port={PORT}\n\
         pg1-socket-path={SOCKET_DIR}\n",
        host = end.host,
        bucket = backup.bucket,
        region = backup.region,
        access = backup.access_key,
        secret = backup.secret_key,
        prefix = backup.prefix,
        pitr = backup.pitr_days,
        processes = (spec.cpus / 2).max(1),
        data = data_directory(spec),
    )
}

/// The steps that bring a backup back, as text a user can follow on the primary. Each command is
/// on its own line, indented by five spaces, and is run as written by terrace's tests.
pub fn restore_procedure(spec: &PostgresSpec) -> String {
    let Some(backup) = &spec.backup else {
        return format!(
            "The database {} has no backups configured: there is nothing to restore from.\n",
            spec.database
        );
    };
    let database = &spec.database;
    let restored = format!("{database}_restored");
    let folder = dump_folder(backup);
    let s3cmd = format!("s3cmd --config={S3CFG} --no-progress");
    let bouncer = spec.pgbouncer.as_ref().map(|_| PGBOUNCER_INI);
    let mut text = format!(
        "Restoring the PostgreSQL database {database} from a backup\n\
         \n\
         Run the commands as root on the primary. A dump is restored into a new database beside the\n\
         live one, so nothing is overwritten until the switch in step 5.\n\
         \n\
         Restore a dump\n\
         \n\
         1. List the dumps. Their names end with the time they were taken (UTC); the newest is last:\n\
         \n\
         \x20    {s3cmd} ls {folder}\n\
         \n\
         2. Choose one and download it:\n\
         \n\
         \x20    dump={database}-20250101T020000Z.dump\n\
         \x20    {s3cmd} get \"{folder}$dump\" \"/var/tmp/$dump\"\n\
         \x20    chown postgres: \"/var/tmp/$dump\"\n\
         \n\
         3. Restore it into a new database, {restored}, in one transaction (it is left empty if\n\
         \x20  anything fails):\n\
         \n\
         \x20    runuser -u postgres -- createdb --owner={user} {restored}\n\
         \x20    runuser -u postgres -- pg_restore --exit-on-error --single-transaction --dbname={restored} \"/var/tmp/$dump\"\n\
         \n\
         4. Check the restored data, for example the tables and their sizes:\n\
         \n\
         \x20    runuser -u postgres -- psql --dbname={restored} --command='\\dt+'\n\
         \n\
         5. Switch to the restored database: {stop}, rename the live database away and the\n\
         \x20  restored one into its place, then start again. Replicas follow the switch by themselves.\n\
         \n",
        user = spec.user,
        stop = if bouncer.is_some() { "stop PgBouncer" } else { "stop the applications" },
    );
    if bouncer.is_some() {
        text.push_str("     systemctl stop pgbouncer.service\n");
    }
    text.push_str(&format!(
        "     runuser -u postgres -- psql --dbname=postgres --command=\"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'\" --command='ALTER DATABASE {database} RENAME TO {database}_before_restore' --command='ALTER DATABASE {restored} RENAME TO {database}'\n"
    ));
    if bouncer.is_some() {
        text.push_str("     systemctl start pgbouncer.service\n");
    }
    text.push_str(&format!(
        "\n\
         \x20  Keep {database}_before_restore until the restored data is confirmed, then drop it and the\n\
         \x20  download:\n\
         \n\
         \x20    runuser -u postgres -- dropdb {database}_before_restore\n\
         \x20    rm \"/var/tmp/$dump\"\n"
    ));
    if backup.continuous {
        let version = spec.version;
        let data = data_directory(spec);
        text.push_str(&format!(
            "\n\
             Point-in-time recovery\n\
             \n\
             The WAL is archived by pgBackRest (stanza {CLUSTER}), so the whole cluster, every database in\n\
             it, can go back to any time in the last {pitr} days. Everything written after that time is lost.\n\
             \n\
             1. See the backups and the archived WAL they cover:\n\
             \n\
             \x20    runuser -u postgres -- pgbackrest --stanza={CLUSTER} info\n\
             \n\
             2. Stop PostgreSQL{and_bouncer} and restore the cluster as it was at the time (UTC) you choose;\n\
             \x20  --delta keeps the files that did not change:\n\
             \n\
             \x20    systemctl stop {stop_units}\n\
             \x20    runuser -u postgres -- pgbackrest --stanza={CLUSTER} --delta --type=time '--target=2025-01-01 12:00:00+00' --target-action=promote restore\n\
             \x20    systemctl start {start_units}\n\
             \n\
             \x20  PostgreSQL replays the archived WAL up to that time, then takes writes again; wait for it:\n\
             \n\
             \x20    until [ \"$(runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align --dbname=postgres --command='SELECT pg_is_in_recovery()')\" = f ]; do sleep 5; done\n\
             \n\
             3. A restore leaves the primary without its replication slots, and its replicas on a history\n\
             \x20  it no longer has. Create the slots again on the primary:\n\
             \n\
             \x20    {CLUSTER_SCRIPT}\n\
             \n\
             \x20  then on each replica move its data directory away and clone the primary again:\n\
             \n\
             \x20    systemctl stop postgresql@{version}-{CLUSTER}.service\n\
             \x20    mv {data} {data}.before-restore\n\
             \x20    {CLUSTER_SCRIPT}\n",
            pitr = backup.pitr_days,
            and_bouncer = if bouncer.is_some() { " and PgBouncer" } else { "" },
            stop_units = if bouncer.is_some() {
                format!("pgbouncer.service postgresql@{version}-{CLUSTER}.service")
            } else {
                format!("postgresql@{version}-{CLUSTER}.service")
            },
            start_units = if bouncer.is_some() {
                format!("postgresql@{version}-{CLUSTER}.service pgbouncer.service")
            } else {
                format!("postgresql@{version}-{CLUSTER}.service")
            },
        ));
    }
    text
}
