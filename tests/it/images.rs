//! Uploads and `/cdn-cgi/image/`: avatars sniffed, re-encoded without EXIF
//! and stored; refused uploads store nothing; variants come in the size and
//! format asked (decoded here to check), `format=auto` follows `Accept`,
//! sizes outside the allowed set are refused, and 100 concurrent requests
//! for one new variant resize it once.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::{StatusCode, header};

use crate::helpers::{Backend, TestApp};

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
        .expect("jpeg");
    out
}

/// `jpeg` with an EXIF segment (camera make and a GPS tag) after SOI.
fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    let plain = jpeg(width, height);
    let mut tiff = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    tiff.extend_from_slice(&[0x01, 0x0f, 0, 2, 0, 0, 0, 12, 0, 0, 0, 26, 0, 0, 0, 0]);
    tiff.extend_from_slice(b"SecretCam GPS\0");
    let len = u16::try_from(tiff.len() + 2).expect("small");
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&plain[2..]);
    out
}

async fn put_avatar(
    app: &TestApp,
    cookie: &str,
    body: Vec<u8>,
    content_type: &str,
) -> (StatusCode, serde_json::Value) {
    let res = reqwest::Client::new()
        .put(format!("{}/api/users/me/avatar", app.url))
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = res.status();
    (status, res.json().await.unwrap_or_default())
}

/// An embedded app with one student's 1200×900 JPEG avatar; its URL.
async fn app_with_avatar() -> (TestApp, String) {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (student, _) = app.signed_up().await;
    let cookie = student.cookie().expect("session cookie");
    let (status, body) = put_avatar(&app, &cookie, jpeg(1200, 900), "image/jpeg").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let url = body["avatar_url"].as_str().expect("avatar_url").to_owned();
    (app, url)
}

async fn get(app: &TestApp, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}{path}", app.url));
    if let Some(accept) = accept {
        req = req.header(header::ACCEPT, accept);
    }
    req.send().await.expect("request")
}

fn stored_avatars(app: &TestApp) -> usize {
    let dir = app.state.config.data_dir.join("objects").join("avatars");
    walk(&dir)
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn avatars_are_cleaned_stored_and_resized_on_request() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (student, _) = app.signed_up().await;
    let cookie = student.cookie().expect("session cookie");

    // Named and labelled as PNG, it is a JPEG: the bytes decide.
    let (status, body) = put_avatar(&app, &cookie, jpeg_with_exif(1600, 1200), "image/png").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let url = body["avatar_url"].as_str().expect("avatar_url").to_owned();
    assert!(
        url.starts_with("/uploads/avatars/") && url.ends_with(".jpeg"),
        "{url}"
    );
    assert_eq!(
        student.get("/api/users/me").await.body["profile"]["avatar_url"],
        url.as_str()
    );

    let original = get(&app, &url, None).await;
    assert_eq!(original.status(), StatusCode::OK);
    assert_eq!(original.headers()[header::CONTENT_TYPE], "image/jpeg");
    let bytes = original.bytes().await.expect("bytes");
    assert!(!bytes.windows(4).any(|w| w == b"Exif"), "EXIF stripped");
    assert!(
        !bytes.windows(9).any(|w| w == b"SecretCam"),
        "metadata gone"
    );
    let stored = image::load_from_memory(&bytes).expect("decodes");
    assert_eq!(
        (stored.width(), stored.height()),
        (1024, 768),
        "shrunk to 1024 a side"
    );

    // Variants in the requested size and format.
    for (options, accept, format, width) in [
        ("width=256,format=webp", None, ImageFormat::WebP, 256),
        ("w=128,q=75,f=jpeg", None, ImageFormat::Jpeg, 128),
        (
            "width=640,format=auto",
            Some("image/avif,image/webp,*/*"),
            ImageFormat::WebP,
            640,
        ),
        (
            "width=640,format=auto",
            Some("image/jpeg,*/*;q=0.8"),
            ImageFormat::Jpeg,
            640,
        ),
        (
            "width=64,height=64,fit=cover,format=png",
            None,
            ImageFormat::Png,
            64,
        ),
    ] {
        let res = get(&app, &format!("/cdn-cgi/image/{options}{url}"), accept).await;
        assert_eq!(res.status(), StatusCode::OK, "{options}");
        assert_eq!(
            res.headers()[header::CACHE_CONTROL],
            "public, max-age=86400"
        );
        if options.contains("auto") {
            assert_eq!(res.headers()[header::VARY], "Accept");
        }
        let bytes = res.bytes().await.expect("bytes");
        assert_eq!(
            image::guess_format(&bytes).expect("format"),
            format,
            "{options}"
        );
        let img = image::load_from_memory(&bytes).expect("variant decodes");
        assert_eq!(img.width(), width, "{options}");
    }

    // AVIF only by name (`auto` never picks it: its encoder is far slower).
    let res = get(
        &app,
        &format!("/cdn-cgi/image/width=64,format=avif{url}"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/avif");
    let bytes = res.bytes().await.expect("bytes");
    assert_eq!(image::guess_format(&bytes).ok(), Some(ImageFormat::Avif));
    // No AVIF decoder is built in: the size from the `ispe` property.
    let ispe = bytes
        .windows(4)
        .position(|w| w == b"ispe")
        .expect("ispe box");
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    assert_eq!((word(ispe + 8), word(ispe + 12)), (64, 48));

    for (path, status) in [
        (
            format!("/cdn-cgi/image/width=257{url}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/cdn-cgi/image/quality=99{url}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/cdn-cgi/image/blur=20{url}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/cdn-cgi/image/width=256/https://example.org/cat.jpg".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/cdn-cgi/image/width=256/uploads/avatars/nobody.jpeg".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/cdn-cgi/image/width=256/uploads/../Cargo.toml".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/cdn-cgi/image/width=256/assets/logo.svg".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        assert_eq!(get(&app, &path, None).await.status(), status, "{path}");
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| c.images.upload_max_bytes = 200_000).await;
    let (student, _) = app.signed_up().await;
    let cookie = student.cookie().expect("session cookie");

    let mut bomb = Vec::new();
    {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(&mut bomb)
            .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
            .expect("png");
    }
    bomb[16..20].copy_from_slice(&40_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&40_000u32.to_be_bytes());
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let animated = {
        use image::codecs::gif::GifEncoder;
        let frame = || {
            image::Frame::new(image::RgbaImage::from_pixel(
                8,
                8,
                image::Rgba([9, 9, 9, 255]),
            ))
        };
        let mut gif = Vec::new();
        GifEncoder::new(&mut gif)
            .encode_frames([frame(), frame()])
            .expect("gif");
        gif
    };
    let cases: Vec<(&str, Vec<u8>, &str, StatusCode)> = vec![
        (
            "oversize",
            jpeg(3000, 3000),
            "image/jpeg",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        ("bomb", bomb, "image/png", StatusCode::UNPROCESSABLE_ENTITY),
        (
            "text",
            b"just some text, not an image".to_vec(),
            "image/jpeg",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
            "image/png",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "html",
            b"<!doctype html><img src=x onerror=alert(1)>".to_vec(),
            "image/gif",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "truncated",
            jpeg(400, 300)[..300].to_vec(),
            "image/jpeg",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "animated",
            animated,
            "image/gif",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty",
            Vec::new(),
            "image/jpeg",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (name, body, content_type, status) in cases {
        let (got, body) = put_avatar(&app, &cookie, body, content_type).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(stored_avatars(&app), 0, "{name} stored something");
    }
    assert!(student.get("/api/users/me").await.body["profile"]["avatar_url"].is_null());
    let anonymous = reqwest::Client::new()
        .put(format!("{}/api/users/me/avatar", app.url))
        .body(jpeg(10, 10))
        .send()
        .await
        .expect("upload");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stored_avatars(&app), 0, "the anonymous upload was stored");

    // The count above sees what is stored: a good upload is counted.
    let (status, body) = put_avatar(&app, &cookie, jpeg(400, 300), "image/jpeg").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(stored_avatars(&app), 1);
}

#[tokio::test]
async fn a_variant_requested_100_times_at_once_is_resized_once_and_then_served_from_cache() {
    let (app, url) = app_with_avatar().await;
    let path = format!("/cdn-cgi/image/width=384,quality=70,format=webp{url}");
    let before = app.state.media.images.transforms();
    let requests = (0..100).map(|_| {
        let (base, path) = (app.url.clone(), path.clone());
        tokio::spawn(async move {
            let res = reqwest::get(format!("{base}{path}"))
                .await
                .expect("request");
            assert_eq!(res.status(), StatusCode::OK);
            res.bytes().await.expect("bytes")
        })
    });
    let bodies: Vec<_> = futures_util::future::join_all(requests).await;
    let first = bodies[0].as_ref().expect("task").clone();
    for body in &bodies {
        assert_eq!(
            body.as_ref().expect("task"),
            &first,
            "every caller got the same variant"
        );
    }
    assert_eq!(
        app.state.media.images.transforms() - before,
        1,
        "resized once"
    );

    // A cached variant is served without reading its source again: with the
    // source gone from the store it still answers, while a variant never
    // made before finds no source.
    let key = url.strip_prefix("/uploads/").expect("an upload");
    assert!(app.state.media.store.delete(key).await.expect("delete"));
    let again = get(&app, &path, None).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.bytes().await.expect("bytes"), first);
    let other = format!("/cdn-cgi/image/width=128,quality=70,format=webp{url}");
    assert_eq!(
        get(&app, &other, None).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// AVIF encodes take seconds of a core each: one at a time, four waiting;
/// requests beyond that get 503 with `Retry-After` instead of piling up.
#[tokio::test]
async fn avif_is_made_one_at_a_time_behind_a_short_queue() {
    let (app, url) = app_with_avatar().await;
    // Eight different variants at once.
    let paths = [50, 60, 70, 75, 80, 85, 90]
        .map(|q| format!("/cdn-cgi/image/width=256,quality={q},format=avif{url}"))
        .into_iter()
        .chain([format!("/cdn-cgi/image/width=384,format=avif{url}")]);
    let requests = paths.map(|path| {
        let base = app.url.clone();
        tokio::spawn(async move {
            let res = reqwest::get(format!("{base}{path}"))
                .await
                .expect("request");
            let retry_after = res.headers().get(header::RETRY_AFTER).cloned();
            (res.status(), retry_after, res.bytes().await.expect("bytes"))
        })
    });
    let (mut made, mut busy) = (0, 0);
    for answer in futures_util::future::join_all(requests).await {
        let (status, retry_after, bytes) = answer.expect("task");
        match status {
            StatusCode::OK => {
                assert_eq!(image::guess_format(&bytes).ok(), Some(ImageFormat::Avif));
                made += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after.is_some(), "503 without Retry-After");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    // All eight arrive within milliseconds of each other and an encode takes
    // far longer, so 5 and 3; a request held up past the first encode's end
    // would find room and be served too.
    assert!(
        made >= 5,
        "one encoding and four waiting are served: {made}"
    );
    assert!(busy >= 1, "the rest are told to come back: {busy}");
    assert_eq!(made + busy, 8);
    assert_eq!(app.state.media.images.transforms(), made);
}
