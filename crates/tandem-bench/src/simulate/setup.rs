//! Accounts, rooms and an avatar for the simulated students.

use std::{io::Cursor, sync::atomic::Ordering};

use anyhow::Context;
use chrono::{Duration, Utc};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header;
use serde_json::{Value, json};

use super::session::{Account, Sim, session_cookie};

/// Students per study room (rooms seat 50).
const PER_ROOM: usize = 20;
/// Sign-ups in flight at once (each costs the server an argon2 hash).
const SIGNUPS_IN_FLIGHT: usize = 8;
const PASSWORD: &str = "simulated students study hard";

/// The first accounts, their rooms and one uploaded avatar.
pub async fn prepare(sim: &Sim) -> anyhow::Result<()> {
    top_up_accounts(sim, 1).await?;
    let account = sim.accounts.lock().unwrap_or_else(|e| e.into_inner())[0].clone();
    let base = sim.base();
    let mut jpeg = Vec::new();
    let photo = image::RgbImage::from_fn(512, 512, |x, y| {
        image::Rgb([(x / 2) as u8, (y / 2) as u8, ((x + y) / 4) as u8])
    });
    image::DynamicImage::ImageRgb8(photo)
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)?;
    let uploaded: Value = sim
        .http
        .put(format!("{base}/api/users/me/avatar"))
        .header(header::COOKIE, &account.cookie)
        .header(header::CONTENT_TYPE, "image/jpeg")
        .body(jpeg)
        .send()
        .await?
        .error_for_status()
        .context("uploading an avatar")?
        .json()
        .await?;
    let avatar = uploaded["avatarUrl"]
        .as_str()
        .or_else(|| uploaded["avatar_url"].as_str());
    *sim.avatar.write().unwrap_or_else(|e| e.into_inner()) =
        avatar.context("no avatar URL")?.to_owned();
    Ok(())
}

/// Signs up accounts until `wanted` are available to sessions, and opens a
/// room per [`PER_ROOM`] of them. Room owners are hosts, kept out of the
/// sessions (an owner cannot leave their own room, only cancel it).
pub async fn top_up_accounts(sim: &Sim, wanted: usize) -> anyhow::Result<()> {
    let have = sim.account_count.load(Ordering::SeqCst);
    if wanted <= have {
        return Ok(());
    }
    let rooms_have = sim.rooms.read().unwrap_or_else(|e| e.into_inner()).len();
    let new_rooms = wanted.div_ceil(PER_ROOM).saturating_sub(rooms_have);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut fresh: Vec<Account> = futures_util::stream::iter(have..wanted + new_rooms)
        .map(|i| sign_up(sim, format!("sim-{}-{i}@example.com", &run[..8])))
        .buffer_unordered(SIGNUPS_IN_FLIGHT)
        .try_collect()
        .await?;
    for owner in fresh.drain(..new_rooms) {
        let id = open_room(sim, &owner).await?;
        sim.rooms
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
    }
    sim.account_count.store(wanted, Ordering::SeqCst);
    sim.accounts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(fresh);
    eprintln!(
        "simulate: {wanted} students, {} rooms",
        rooms_have + new_rooms
    );
    Ok(())
}

async fn sign_up(sim: &Sim, email: String) -> anyhow::Result<Account> {
    let res = sim
        .http
        .post(format!("{}/api/auth/register", sim.base()))
        .json(&json!({"email": email, "password": PASSWORD, "display_name": "Simulated student"}))
        .send()
        .await?;
    anyhow::ensure!(
        res.status().is_success(),
        "signing up failed with {} (raise TANDEM_REGISTER_MAX_PER_IP on the target): {}",
        res.status(),
        res.text().await.unwrap_or_default()
    );
    let cookie = session_cookie(res.headers()).context("no session cookie")?;
    let profile = json!({"subjects": ["Linear algebra", "Statistics"], "level": "intermediate"});
    sim.http
        .patch(format!("{}/api/users/me", sim.base()))
        .header(header::COOKIE, &cookie)
        .json(&profile)
        .send()
        .await?
        .error_for_status()
        .context("filling in a profile")?;
    Ok(Account {
        email,
        password: PASSWORD.into(),
        cookie,
    })
}

async fn open_room(sim: &Sim, owner: &Account) -> anyhow::Result<String> {
    let start = Utc::now();
    let body = json!({
        "title": "Simulated study room", "subject": "Linear algebra",
        "starts_at": start.to_rfc3339(), "ends_at": (start + Duration::hours(12)).to_rfc3339(),
        "capacity": 50,
    });
    let room: Value = sim
        .http
        .post(format!("{}/api/study-sessions", sim.base()))
        .header(header::COOKIE, &owner.cookie)
        .json(&body)
        .send()
        .await?
        .error_for_status()
        .context("opening a study room")?
        .json()
        .await?;
    Ok(room["id"].as_str().context("no room id")?.to_owned())
}
