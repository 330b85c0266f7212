//! Issue 18's attacks on images, performed against a real server: giant
//! output geometry (finding 1), disk exhaustion through variants (4),
//! decoding uploads outside the image pool (10), AVIF encodes outliving
//! their request (13) and avatars outliving their account (20).

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::{StatusCode, header};

use crate::helpers::{Backend, Client, TestApp};

// The rate limit counts in Redis and accounts live in PostgreSQL there.
crate::on_both_backends!(
    new_variants_are_rate_limited_per_ip_and_cached_ones_are_free,
    a_deleted_accounts_avatar_and_variants_are_gone
);

pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x ^ y) % 239) as u8])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .expect("png");
    out
}

/// Uploads `body` as `client`'s avatar; its URL.
pub(crate) async fn upload(app: &TestApp, client: &Client, body: Vec<u8>) -> String {
    let res = reqwest::Client::new()
        .put(format!("{}/api/users/me/avatar", app.url))
        .header(header::COOKIE, client.cookie().expect("session cookie"))
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["avatar_url"].as_str().expect("avatar_url").to_owned()
}

pub(crate) async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path}", app.url))
        .await
        .expect("request")
}

/// Finding 1: a 1×1024 avatar at `width=2048,dpr=3,fit=contain` asked for a
/// 6144 × 6,291,456 buffer (~108 GiB) and the process aborted. Now every
/// fit that enlarges is held to the output budget: a 422 problem saying
/// what to ask for instead, answered before any pixel is decoded, and the
/// server keeps serving.
#[tokio::test]
async fn giant_output_geometry_is_refused_and_the_server_lives() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (student, _) = app.signed_up().await;
    let url = upload(&app, &student, png(1, 1024)).await;
    for options in [
        "width=2048,dpr=3,fit=contain",
        "width=2048,dpr=3,fit=cover",
        "w=2048,dpr=3,fit=pad,f=png",
        "width=2048,dpr=2,fit=contain,format=webp",
        "width=2048,height=2048,dpr=3,fit=pad",
    ] {
        let started = std::time::Instant::now();
        let res = get(&app, &format!("/cdn-cgi/image/{options}{url}")).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{options}");
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let problem: serde_json::Value = res.json().await.expect("problem");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("over the limit"), "{options}: {detail}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{options} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(app.state.media.images.transforms(), 0, "nothing was made");
    // Still alive, and honest requests are served.
    let res = get(&app, &format!("/cdn-cgi/image/height=256,fit=contain{url}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(get(&app, "/healthz").await.status(), StatusCode::OK);
}

pub(crate) fn noisy_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut seed = 0x9E37_79B9_u32;
    let img = RgbImage::from_fn(width, height, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let [a, b, c, _] = seed.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
        .expect("jpeg");
    out
}

/// Bytes of the files under `dir`.
pub(crate) fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => disk_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn variants_dir(app: &TestApp) -> std::path::PathBuf {
    app.state.config.data_dir.join("objects").join("variants")
}

/// Finding 4, part one: every option spelling minted a stored variant
/// forever (5 requests wrote 242 MB). Now equivalent spellings share one
/// (PNG has no quality; fits that cannot differ are one), and the stored
/// variants stay within `TANDEM_IMAGE_VARIANT_BUDGET_MB`, the least
/// recently used deleted first.
#[tokio::test]
async fn variants_share_canonical_keys_and_stay_within_the_disk_budget() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.images.variant_budget_mb = 1;
        c.images.create_per_minute = 10_000;
    })
    .await;
    let (student, _) = app.signed_up().await;
    let url = upload(&app, &student, noisy_jpeg(1024, 768)).await;

    for options in [
        "width=256,format=png,quality=50",
        "width=256,format=png,quality=90",
        "w=256,f=png",
        "width=128,dpr=2,format=png,quality=60,fit=crop",
    ] {
        let res = get(&app, &format!("/cdn-cgi/image/{options}{url}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{options}");
    }
    assert_eq!(
        app.state.media.images.transforms(),
        1,
        "one variant for four spellings"
    );

    // Noisy PNGs of 150 KB to 2.3 MB each: far more than the 1 MiB budget.
    let mut made = 0;
    for size in [256, 384, 640, 720, 750, 828] {
        for fit in ["contain", "cover"] {
            let options = format!("width={size},height={size},fit={fit},format=png");
            let res = get(&app, &format!("/cdn-cgi/image/{options}{url}")).await;
            assert_eq!(res.status(), StatusCode::OK, "{options}");
            made += res.bytes().await.expect("bytes").len() as u64;
        }
    }
    assert!(made > 4 << 20, "the run made {made} bytes of variants");
    let on_disk = disk_bytes(&variants_dir(&app));
    assert!(on_disk <= 1 << 20, "{on_disk} bytes of variants kept");
    assert_eq!(app.state.media.images.stored_bytes().await, on_disk);
    // The most recent still answers (from memory or disk).
    let res = get(
        &app,
        &format!("/cdn-cgi/image/width=828,height=828,fit=cover,format=png{url}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// Finding 4, part two: the route was outside every rate limit. New
/// variants are charged per client IP (`TANDEM_IMAGE_CREATE_PER_MINUTE`);
/// cached ones are free and never refused.
async fn new_variants_are_rate_limited_per_ip_and_cached_ones_are_free(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.images.create_per_minute = 3).await;
    let (student, _) = app.signed_up().await;
    let url = upload(&app, &student, noisy_jpeg(400, 300)).await;
    for width in [16, 32, 48] {
        let res = get(
            &app,
            &format!("/cdn-cgi/image/width={width},format=webp{url}"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{width}");
    }
    let res = get(&app, &format!("/cdn-cgi/image/width=64,format=webp{url}")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    for _ in 0..20 {
        let res = get(&app, &format!("/cdn-cgi/image/width=16,format=webp{url}")).await;
        assert_eq!(res.status(), StatusCode::OK, "a cached variant is free");
    }
    assert_eq!(app.state.media.images.transforms(), 3);
}

/// Finding 4, part three: variant creation is bounded (`TANDEM_IMAGE_QUEUE`
/// jobs waiting or running); past it requests get 503 with `Retry-After`
/// at once, while cached variants are still served.
#[tokio::test]
async fn a_flood_of_new_variants_is_queued_then_refused_and_cached_ones_still_serve() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.images.queue = 2;
        c.images.create_per_minute = 10_000;
    })
    .await;
    let (student, _) = app.signed_up().await;
    let url = upload(&app, &student, noisy_jpeg(1024, 768)).await;
    let cached = format!("/cdn-cgi/image/width=64,format=jpeg{url}");
    assert_eq!(get(&app, &cached).await.status(), StatusCode::OK);

    let flood = [50, 60, 70, 75, 80, 85, 90].into_iter().flat_map(|q| {
        [640, 720, 750].map(|w| {
            format!("/cdn-cgi/image/width={w},height={w},fit=pad,quality={q},format=webp{url}")
        })
    });
    let requests: Vec<_> = flood
        .map(|path| {
            let base = app.url.clone();
            tokio::spawn(async move {
                let res = reqwest::get(format!("{base}{path}"))
                    .await
                    .expect("request");
                (
                    res.status(),
                    res.headers().contains_key(header::RETRY_AFTER),
                )
            })
        })
        .collect();
    assert_eq!(get(&app, &cached).await.status(), StatusCode::OK);
    let (mut made, mut busy) = (0, 0);
    for answer in futures_util::future::join_all(requests).await {
        match answer.expect("task") {
            (StatusCode::OK, _) => made += 1,
            (StatusCode::SERVICE_UNAVAILABLE, true) => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(made >= 2 && busy >= 1, "made {made}, refused {busy}");
    assert!(app.state.media.images.pool.peak_running() <= 2);
}

/// Finding 4, part four: a new avatar used to leave the old one (and its
/// variants) stored forever. Now the replaced upload goes with them.
#[tokio::test]
async fn a_new_avatar_deletes_the_old_one_and_its_variants() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (student, _) = app.signed_up().await;
    let old = upload(&app, &student, noisy_jpeg(300, 200)).await;
    let old_variant = format!("/cdn-cgi/image/width=128,format=webp{old}");
    assert_eq!(get(&app, &old_variant).await.status(), StatusCode::OK);
    let new = upload(&app, &student, noisy_jpeg(200, 300)).await;
    assert_ne!(old, new);
    assert_eq!(get(&app, &old).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, &old_variant).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&app, &new).await.status(), StatusCode::OK);
    let objects = app.state.config.data_dir.join("objects");
    let user_dir = std::fs::read_dir(objects.join("avatars"))
        .expect("avatars")
        .flatten()
        .next()
        .expect("the user's folder")
        .path();
    assert_eq!(
        std::fs::read_dir(&user_dir).expect("dir").count(),
        1,
        "only the new one"
    );
    assert_eq!(
        disk_bytes(&variants_dir(&app)),
        0,
        "the old variant is gone"
    );
}

/// Finding 20: a deleted account's avatar stayed public (cached for a
/// year). Now deletion removes its uploads and their variants, which 404
/// at once; uploads are cached a day, not a year (a CDN edge may keep a
/// copy that long).
async fn a_deleted_accounts_avatar_and_variants_are_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (student, _) = app.signed_up().await;
    let url = upload(&app, &student, noisy_jpeg(300, 200)).await;
    let variant = format!("/cdn-cgi/image/width=128,format=webp{url}");
    for path in [&url, &variant] {
        let res = get(&app, path).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CACHE_CONTROL],
            "public, max-age=86400"
        );
    }
    let password = serde_json::json!({ "password": crate::helpers::PASSWORD });
    let res = student.delete("/api/users/me", Some(password)).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    assert_eq!(get(&app, &url).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&app, &variant).await.status(), StatusCode::NOT_FOUND);
    let objects = app.state.config.data_dir.join("objects");
    assert_eq!(disk_bytes(&objects.join("avatars")), 0);
    assert_eq!(disk_bytes(&variants_dir(&app)), 0);
}
