//! `tandem archive`: run the analytics archive now, list what is archived,
//! restore an object.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tandem_archive::{Archiver, Event, Observer, Trigger};
use tandem_core::{ExposeSecret, SystemClock};
use tandem_server::Config;

/// `tandem archive` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Archive every expired week now (waits if none is due: nothing to do).
    Run {
        /// Only report what would be archived.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the archive objects with their manifests.
    List,
    /// Re-import an archive object into the database (idempotent).
    Restore {
        /// The object's key, as `list` shows it.
        object: String,
    },
}

pub async fn run(config: Config, command: Command) -> anyhow::Result<()> {
    let url = config.database.url.as_ref().map(|u| u.expose_secret());
    let options = tandem_db::ConnectOptions::default();
    let db = tandem_db::connect(url, &config.data_dir, &options)
        .await
        .context("connecting to the database (DATABASE_URL)")?;
    if config.database.auto_migrate {
        db.migrate().await.context("applying database migrations")?;
    }
    let archiver = tandem_server::archiver(&config, db, Arc::new(SystemClock))?;
    match command {
        Command::Run { dry_run } => archive(&archiver, dry_run).await,
        Command::List => list(&archiver).await,
        Command::Restore { object } => {
            let progress = Progress::default();
            let restored = archiver.restore(&object, &progress).await;
            progress.finish();
            let restored = restored?;
            println!(
                "restored {object}: {} rows, {} were missing and inserted",
                restored.rows, restored.inserted
            );
            Ok(())
        }
    }
}

async fn archive(archiver: &Archiver, dry_run: bool) -> anyhow::Result<()> {
    let run = archiver.begin(Trigger::Cli, dry_run).await?;
    let progress = Progress::default();
    let run = run.execute(&progress).await;
    progress.finish();
    let verb = if dry_run { "would archive" } else { "archived" };
    println!(
        "run {} {}: {verb} {} rows in {} objects ({} bytes) to {}",
        run.id,
        run.status,
        run.rows,
        run.objects,
        run.bytes,
        archiver.store().kind()
    );
    match run.error {
        Some(error) => anyhow::bail!("archive run failed: {error}"),
        None => Ok(()),
    }
}

async fn list(archiver: &Archiver) -> anyhow::Result<()> {
    let objects = archiver.list().await?;
    if objects.is_empty() {
        println!(
            "no archive objects in the {} store",
            archiver.store().kind()
        );
    }
    for object in objects {
        match object.manifest {
            Some(m) => println!(
                "{}  {:>10} rows  {:>12} bytes  {} to {}  sha256 {}",
                object.key,
                m.rows,
                object.size,
                m.from.format("%Y-%m-%d"),
                m.to.format("%Y-%m-%d"),
                &m.sha256[..m.sha256.len().min(16)]
            ),
            None => println!("{}  {:>12} bytes  (no manifest)", object.key, object.size),
        }
    }
    Ok(())
}

/// A progress bar per week (hidden when stdout is not a terminal), and a
/// line per finished week.
#[derive(Default)]
struct Progress {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    fn bar(&self, len: u64, message: String) {
        let bar = ProgressBar::new(len).with_message(message);
        bar.set_style(
            ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len} rows {per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        if let Some(old) = self
            .bar
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(bar)
        {
            old.finish_and_clear();
        }
    }

    fn inc(&self, by: u64) {
        if let Some(bar) = &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            bar.inc(by);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn event(&self, event: &Event) -> Result<(), String> {
        match event {
            Event::Exporting { table, week, rows } => {
                self.bar(*rows, format!("{} {}", table.name(), week.label()));
            }
            Event::RowsEncoded { rows } => self.inc(*rows),
            Event::RowsRestored { rows, .. } => {
                if self.bar.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
                    self.bar(0, "restoring".into());
                }
                self.inc(*rows);
            }
            Event::WeekDone { table, week } => {
                self.finish();
                println!("archived {} {}", table.name(), week.label());
            }
            Event::WouldArchive { table, week, rows } => {
                println!(
                    "would archive {} {}: {rows} rows",
                    table.name(),
                    week.label()
                );
            }
            Event::BytesUploaded { .. } | Event::Verified { .. } | Event::RowsPurged { .. } => {}
        }
        Ok(())
    }
}
