use tandem_core::ExposeSecret;
use tandem_server::Config;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let url = config.database.url.as_ref().map(|u| u.expose_secret());
    let options = tandem_db::ConnectOptions::default();
    let db = tandem_db::connect(url, &config.data_dir, &options).await?;
    db.migrate().await?;
    println!("{} database is up to date", db.backend());
    Ok(())
}
