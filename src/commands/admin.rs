//! `tandem admin`: who may see the operators' pages. Granted to an existing
//! account from the machine, never by signing up with a listed address.

use tandem_core::ExposeSecret;
use tandem_server::Config;

/// `tandem admin` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Give the account with this e-mail the admin pages.
    Grant {
        /// The account's e-mail address.
        email: String,
    },
    /// Take the admin pages back.
    Revoke {
        /// The account's e-mail address.
        email: String,
    },
    /// List the accounts with the admin pages.
    List,
}

pub async fn run(config: Config, command: Command) -> anyhow::Result<()> {
    let url = config.database.url.as_ref().map(|u| u.expose_secret());
    let options = tandem_db::ConnectOptions::default();
    let db = tandem_db::connect(url, &config.data_dir, &options).await?;
    db.migrate().await?;
    let (email, admin) = match command {
        Command::List => {
            for email in db.admins().await? {
                println!("{email}");
            }
            return Ok(());
        }
        Command::Grant { email } => (email, true),
        Command::Revoke { email } => (email, false),
    };
    let email = email.trim().to_lowercase();
    if !db.set_admin(&email, admin).await? {
        anyhow::bail!("no account with the e-mail {email}: sign up first, then grant");
    }
    let done = if admin { "granted to" } else { "revoked from" };
    println!("admin pages {done} {email}");
    Ok(())
}
