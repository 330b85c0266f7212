use std::sync::Arc;

use tandem_core::SystemClock;
use tandem_server::{App, AppState, Config, jobs, run_maintenance};

use super::shutdown_on_signals;

/// Background work without HTTP: the job queues' workers, periodic upkeep
/// (expired sessions, analytics partitions) and the archive schedule. Run several for more throughput; with Redis
/// they share BullMQ queues, in the embedded mode the database's.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signals();
    let app = AppState(Arc::new(
        App::build(config, Arc::new(SystemClock), shutdown.clone(), false).await?,
    ));
    println!(
        "Tandem worker running ({} queue); Ctrl-C to stop",
        app.queue.kind()
    );
    let schedule = async {
        if let Some(schedule) = app.config.archive.schedule.clone() {
            tandem_archive::run_schedule(
                app.analytics.archiver.clone(),
                schedule,
                shutdown.clone(),
            )
            .await;
        }
    };
    tokio::join!(
        run_maintenance(app.clone(), shutdown.clone()),
        jobs::run_workers(app.clone(), shutdown.clone()),
        schedule,
    );
    app.analytics.sink.drained().await;
    tracing::info!("worker stopped");
    Ok(())
}
