use std::sync::Arc;

use tandem_core::SystemClock;
use tandem_server::{App, AppState, Config, run_maintenance};

use super::shutdown_on_signals;

/// Background work without HTTP. Today: periodic upkeep (expired sessions).
/// Later issues add the job queue's workers here.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let app = AppState(Arc::new(App::build(config, Arc::new(SystemClock)).await?));
    println!("Tandem worker running; Ctrl-C to stop");
    run_maintenance(app, shutdown_on_signals()).await;
    tracing::info!("worker stopped");
    Ok(())
}
