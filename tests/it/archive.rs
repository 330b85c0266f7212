//! Archiving analytics to cold storage, on SQLite and PostgreSQL, to a
//! local folder and to a real S3 API (moto): old weeks end up in the archive
//! with the right content and manifest, young rows stay, restores bring rows
//! back (idempotently); a run that fails at any step is finished by the next
//! one with every row exactly once in the archive and none left behind.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Read,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use chrono::{DateTime, Duration, Utc};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use tandem_archive::{ArchiveOptions, Archiver, Event, Manifest, Observer, Quiet, Trigger};
use tandem_core::{Clock, ManualClock};
use tandem_db::{
    Activity, AnalyticsRow, AnalyticsTable, Database, Json, PageView, StudyVisit, Week,
};
use tandem_store::{LocalStore, ObjectStore, S3Config, S3Store};
use uuid::Uuid;

use crate::helpers::services::{FreshDatabase, fresh_postgres};

/// A database engine for the archiver (a fresh one per test).
enum Engine {
    Sqlite,
    Postgres,
}

/// Where archives go.
enum Target {
    Local,
    S3,
}

/// One archiver on its own database and store.
struct Fixture {
    db: Arc<dyn Database>,
    store: Arc<dyn ObjectStore>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    _pg: Option<FreshDatabase>,
}

impl Fixture {
    /// `None` when the engine or the S3 API is missing (and not under CI).
    async fn new(engine: Engine, target: Target) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, pg) = match engine {
            Engine::Sqlite => {
                let db = tandem_db::connect(None, dir.path(), &Default::default())
                    .await
                    .expect("sqlite");
                (db, None)
            }
            Engine::Postgres => {
                let pg = fresh_postgres().await?;
                let db = tandem_db::connect(Some(&pg.url), dir.path(), &Default::default())
                    .await
                    .expect("postgres");
                (db, Some(pg))
            }
        };
        db.migrate().await.expect("migrate");
        let store: Arc<dyn ObjectStore> = match target {
            Target::Local => Arc::new(LocalStore::new(dir.path().join("archive"))),
            Target::S3 => {
                let bucket = crate::store::bucket().await?;
                Arc::new(
                    S3Store::new(&S3Config {
                        bucket,
                        region: "us-east-1".into(),
                        endpoint: Some(crate::store::endpoint()),
                        access_key_id: Some("test".into()),
                        secret_access_key: Some("test".into()),
                    })
                    .expect("s3"),
                )
            }
        };
        Some(Self {
            db,
            store,
            clock: Arc::new(ManualClock::new()),
            _dir: dir,
            _pg: pg,
        })
    }

    fn archiver(&self, chunk_bytes: usize) -> Archiver {
        Archiver::new(
            self.db.clone(),
            self.store.clone(),
            self.clock.clone(),
            ArchiveOptions {
                chunk_bytes,
                ..ArchiveOptions::default()
            },
        )
    }

    /// Inserts `per_week` rows of every table in each week `days_ago`.
    async fn seed(&self, days_ago: &[i64], per_week: usize) {
        let now = self.clock.now();
        let mut rows = Vec::new();
        for &days in days_ago {
            let at = now - Duration::days(days);
            for i in 0..per_week {
                let at = at + Duration::milliseconds(i as i64);
                let visitor = Uuid::new_v4();
                rows.push(AnalyticsRow::PageView(PageView {
                    id: 0,
                    occurred_at: at,
                    visitor_id: visitor,
                    user_id: (i % 2 == 0).then(Uuid::new_v4),
                    path: format!("/rooms/{days}/{i}"),
                    referrer: (i % 3 == 0).then(|| "https://example.org/ä?q=\"x\"".into()),
                }));
                rows.push(AnalyticsRow::Activity(Activity {
                    id: 0,
                    occurred_at: at,
                    visitor_id: visitor,
                    user_id: None,
                    kind: "search".into(),
                    detail: Json(serde_json::json!({ "q": format!("calculus {i}"), "n": i })),
                }));
                rows.push(AnalyticsRow::StudyVisit(StudyVisit {
                    id: 0,
                    occurred_at: at,
                    user_id: visitor,
                    study_session_id: Some(Uuid::new_v4()),
                    started_at: at - Duration::minutes(45),
                }));
            }
        }
        for chunk in rows.chunks(3_000) {
            self.db.insert_analytics(chunk, false).await.expect("seed");
        }
    }

    /// Every row of every week of `table` around the given days.
    async fn rows(&self, table: AnalyticsTable, days_ago: &[i64]) -> Vec<AnalyticsRow> {
        let mut all = Vec::new();
        for week in weeks(self.clock.now(), days_ago) {
            let batches: Vec<Vec<AnalyticsRow>> = self
                .db
                .week_rows(table, week)
                .try_collect()
                .await
                .unwrap_or_default();
            all.extend(batches.into_iter().flatten());
        }
        all
    }

    async fn object(&self, key: &str) -> Vec<u8> {
        self.store
            .get(key)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{key} is missing"))
            .to_vec()
    }

    /// The rows of an archive object, decoded here (not by the archiver).
    async fn archived(&self, table: AnalyticsTable, key: &str) -> Vec<AnalyticsRow> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&self.object(key).await[..])
            .read_to_string(&mut text)
            .expect("gunzip");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "lines end in newlines"
        );
        text.lines()
            .map(|l| AnalyticsRow::from_json(table, l.as_bytes()).expect("a row per line"))
            .collect()
    }
}

fn weeks(now: DateTime<Utc>, days_ago: &[i64]) -> BTreeSet<Week> {
    days_ago
        .iter()
        .map(|d| Week::of(now - Duration::days(*d)))
        .collect()
}

fn key(table: AnalyticsTable, week: Week) -> String {
    format!("analytics/{}/{}.jsonl.gz", table.name(), week.label())
}

/// Old weeks (archived) and a young one (kept).
const OLD: [i64; 2] = [130, 100];
const YOUNG: [i64; 1] = [10];

async fn archives_old_weeks_and_restores(engine: Engine, target: Target) {
    let Some(f) = Fixture::new(engine, target).await else {
        return;
    };
    f.seed(&OLD, 40).await;
    f.seed(&YOUNG, 25).await;
    let mut before = BTreeMap::new();
    for table in AnalyticsTable::ALL {
        before.insert(table, f.rows(table, &OLD).await);
        assert_eq!(before[&table].len(), 80, "seeded {}", table.name());
    }
    let archiver = f.archiver(1 << 20);

    let dry = run(&archiver, true).await;
    assert_eq!(
        (dry.status.as_str(), dry.rows, dry.objects),
        ("succeeded", 240, 6)
    );
    assert_eq!(
        f.rows(AnalyticsTable::PageViews, &OLD).await.len(),
        80,
        "a dry run changes nothing"
    );

    let first = run(&archiver, false).await;
    assert_eq!(first.status, "succeeded", "{:?}", first.error);
    assert_eq!((first.rows, first.objects), (240, 6));
    for table in AnalyticsTable::ALL {
        let mut archived = Vec::new();
        for week in weeks(f.clock.now(), &OLD) {
            let key = key(table, week);
            let bytes = f.object(&key).await;
            let rows = f.archived(table, &key).await;
            assert!(rows.iter().all(|r| Week::of(r.occurred_at()) == week));
            let manifest: Manifest =
                serde_json::from_slice(&f.object(&Manifest::key_for(&key)).await)
                    .expect("manifest");
            assert_eq!(manifest.rows, rows.len() as u64);
            assert_eq!(manifest.bytes, bytes.len() as u64);
            assert_eq!(manifest.sha256, hex(&Sha256::digest(&bytes)));
            assert_eq!(
                (manifest.schema_version, manifest.table.as_str()),
                (1, table.name())
            );
            assert_eq!((manifest.from, manifest.to), (week.start(), week.end()));
            archived.extend(rows);
        }
        assert_eq!(
            archived,
            before[&table],
            "{}: the archive holds exactly the old rows",
            table.name()
        );
        assert!(f.rows(table, &OLD).await.is_empty(), "old rows are gone");
        assert_eq!(f.rows(table, &YOUNG).await.len(), 25, "young rows stay");
    }
    let paths: BTreeSet<String> = before[&AnalyticsTable::PageViews]
        .iter()
        .map(|r| match r {
            AnalyticsRow::PageView(p) => p.path.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(paths.len(), 80, "the seeded page views, each once");
    assert_eq!(archiver.list().await.expect("list").len(), 6);

    // Restore one week, twice: the second time inserts nothing.
    let week = Week::of(f.clock.now() - Duration::days(OLD[0]));
    let object = key(AnalyticsTable::PageViews, week);
    let first_bytes = f.object(&object).await;
    let restored = archiver.restore(&object, &Quiet).await.expect("restore");
    assert_eq!((restored.rows, restored.inserted), (40, 40));
    let again = archiver
        .restore(&object, &Quiet)
        .await
        .expect("restore again");
    assert_eq!((again.rows, again.inserted), (40, 0));
    let back = f.rows(AnalyticsTable::PageViews, &OLD[..1]).await;
    let expected: Vec<_> = before[&AnalyticsTable::PageViews]
        .iter()
        .filter(|r| Week::of(r.occurred_at()) == week)
        .cloned()
        .collect();
    assert_eq!(
        back, expected,
        "restored rows are the archived rows, ids and all"
    );

    // The next run archives the restored week again, into the same object.
    let rerun = run(&archiver, false).await;
    assert_eq!(
        (rerun.status.as_str(), rerun.rows, rerun.objects),
        ("succeeded", 40, 1)
    );
    assert_eq!(
        f.object(&object).await,
        first_bytes,
        "deterministic objects"
    );
    assert!(f.rows(AnalyticsTable::PageViews, &OLD).await.is_empty());
}

/// One archive run from the CLI's side, to completion.
async fn run(archiver: &Archiver, dry_run: bool) -> tandem_db::ArchiveRun {
    let handle = archiver.begin(Trigger::Cli, dry_run).await.expect("begin");
    handle.execute(&Quiet).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fails the run once, at the `nth` event matching `at`.
struct FailAt {
    at: fn(&Event) -> bool,
    nth: usize,
    seen: AtomicUsize,
}

impl Observer for FailAt {
    fn event(&self, event: &Event) -> Result<(), String> {
        if (self.at)(event) && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            return Err(format!("injected failure at {event:?}"));
        }
        Ok(())
    }
}

/// A crash at `at` then a rerun: every row once in the archive, none left.
async fn crash_then_rerun(engine: Engine, target: Target, at: fn(&Event) -> bool, nth: usize) {
    let Some(f) = Fixture::new(engine, target).await else {
        return;
    };
    // 6,000 rows a table in one week: SQLite purges each in two batches.
    f.seed(&OLD[..1], 6_000).await;
    f.seed(&YOUNG, 10).await;
    let mut before = BTreeMap::new();
    for table in AnalyticsTable::ALL {
        before.insert(table, f.rows(table, &OLD[..1]).await);
    }
    // Small pieces, so an upload is in many parts and can die midway.
    let archiver = f.archiver(16 << 10);
    let fail = FailAt {
        at,
        nth,
        seen: AtomicUsize::new(0),
    };
    let crashed = archiver
        .begin(Trigger::Cli, false)
        .await
        .expect("begin")
        .execute(&fail)
        .await;
    assert_eq!(
        crashed.status, "failed",
        "the injected failure stops the run"
    );
    assert!(
        fail.seen.load(Ordering::SeqCst) >= nth,
        "the failure point was reached"
    );

    let rerun = run(&archiver, false).await;
    assert_eq!(rerun.status, "succeeded", "{:?}", rerun.error);
    let week = Week::of(f.clock.now() - Duration::days(OLD[0]));
    for table in AnalyticsTable::ALL {
        let archived = f.archived(table, &key(table, week)).await;
        let ids: BTreeSet<i64> = archived.iter().map(AnalyticsRow::id).collect();
        assert_eq!(ids.len(), archived.len(), "{}: no row twice", table.name());
        assert_eq!(
            archived,
            before[&table],
            "{}: every row, exactly once",
            table.name()
        );
        assert!(
            f.rows(table, &OLD[..1]).await.is_empty(),
            "none left behind"
        );
        assert_eq!(
            f.rows(table, &YOUNG).await.len(),
            10,
            "young rows untouched"
        );
    }
    let listed = archiver.list().await.expect("list");
    assert_eq!(
        listed.len(),
        3,
        "one object per table, no leftovers: {listed:?}"
    );
}

fn before_upload(e: &Event) -> bool {
    matches!(e, Event::Exporting { .. })
}
fn mid_upload(e: &Event) -> bool {
    matches!(e, Event::BytesUploaded { .. })
}
fn after_upload(e: &Event) -> bool {
    matches!(e, Event::Verified { .. })
}
fn mid_delete(e: &Event) -> bool {
    matches!(e, Event::RowsPurged { .. })
}

macro_rules! archive_tests {
    ($($name:ident: $engine:ident, $target:ident;)*) => {$(
        #[tokio::test]
        async fn $name() {
            archives_old_weeks_and_restores(Engine::$engine, Target::$target).await;
        }
    )*};
}

archive_tests! {
    sqlite_to_folder: Sqlite, Local;
    sqlite_to_s3: Sqlite, S3;
    postgres_to_folder: Postgres, Local;
    postgres_to_s3: Postgres, S3;
}

macro_rules! crash_tests {
    ($($name:ident: $engine:ident, $target:ident, $at:ident, $nth:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            crash_then_rerun(Engine::$engine, Target::$target, $at, $nth).await;
        }
    )*};
}

crash_tests! {
    sqlite_crash_before_upload: Sqlite, Local, before_upload, 1;
    sqlite_crash_mid_upload: Sqlite, Local, mid_upload, 3;
    sqlite_crash_after_upload: Sqlite, Local, after_upload, 1;
    sqlite_crash_mid_delete: Sqlite, Local, mid_delete, 1;
    postgres_crash_before_upload: Postgres, Local, before_upload, 1;
    postgres_crash_mid_upload: Postgres, S3, mid_upload, 3;
    postgres_crash_after_upload: Postgres, S3, after_upload, 1;
    postgres_crash_mid_delete: Postgres, Local, mid_delete, 1;
}

#[tokio::test]
async fn one_run_per_schedule_slot_and_one_at_a_time() {
    let Some(f) = Fixture::new(Engine::Sqlite, Target::Local).await else {
        return;
    };
    let a = f.archiver(1 << 20);
    let b = f.archiver(1 << 20);
    let held = a.begin(Trigger::Cli, false).await.expect("begin");
    assert!(matches!(
        b.begin(Trigger::Cron, false).await,
        Err(tandem_archive::ArchiveError::Busy)
    ));
    held.execute(&Quiet).await;
    let slot = "2026-11-29T03:00:00Z".parse().expect("slot");
    a.begin(Trigger::Schedule(slot), false)
        .await
        .expect("first")
        .execute(&Quiet)
        .await;
    assert!(matches!(
        b.begin(Trigger::Schedule(slot), false).await,
        Err(tandem_archive::ArchiveError::SlotTaken)
    ));
    let runs = f.db.archive_runs(10).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.status == "succeeded"));
}

/// Runs `tandem archive …` on an embedded data dir.
fn cli(data_dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("archive")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("ARCHIVE_BUCKET")
        .env("ARCHIVE_AFTER_DAYS", "90")
        .output()
        .expect("tandem runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn the_cli_runs_lists_and_restores() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = tandem_db::connect(None, dir.path(), &Default::default())
        .await
        .expect("sqlite");
    db.migrate().await.expect("migrate");
    let old = Week::of(Utc::now() - Duration::days(120)).start() + Duration::days(2);
    let rows: Vec<AnalyticsRow> = (0..50)
        .map(|i| {
            AnalyticsRow::PageView(PageView {
                id: 0,
                occurred_at: old + Duration::minutes(i),
                visitor_id: Uuid::new_v4(),
                user_id: None,
                path: format!("/cli/{i}"),
                referrer: None,
            })
        })
        .collect();
    db.insert_analytics(&rows, false).await.expect("seed");
    let week = Week::of(old);

    let (ok, out) = cli(dir.path(), &["run", "--dry-run"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "would archive page_views {}: 50 rows",
            week.label()
        )),
        "{out}"
    );
    assert_eq!(
        db.count_week(AnalyticsTable::PageViews, week)
            .await
            .expect("count"),
        50
    );

    let (ok, out) = cli(dir.path(), &["run"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("succeeded: archived 50 rows in 1 objects"),
        "{out}"
    );
    assert_eq!(
        db.count_week(AnalyticsTable::PageViews, week)
            .await
            .expect("count"),
        0
    );

    let key = key(AnalyticsTable::PageViews, week);
    let (ok, out) = cli(dir.path(), &["list"]);
    assert!(ok, "{out}");
    assert!(out.contains(&key) && out.contains("50 rows"), "{out}");

    let (ok, out) = cli(dir.path(), &["restore", &key]);
    assert!(ok, "{out}");
    assert!(out.contains("50 rows, 50 were missing"), "{out}");
    assert_eq!(
        db.count_week(AnalyticsTable::PageViews, week)
            .await
            .expect("count"),
        50
    );
    let (ok, out) = cli(dir.path(), &["restore", "analytics/nope/2026-W01.jsonl.gz"]);
    assert!(!ok && out.contains("not an archive object"), "{out}");
}
