//! The object store on a real S3 API (moto's server, started by `.ci/run` on
//! 127.0.0.1:59000): objects round-trip, missing ones are `None`, keys
//! cannot climb out; and avatars uploaded through the API land in the
//! bucket and are resized from it.

use std::io::Cursor;

use bytes::Bytes;
use reqwest::{StatusCode, header};
use tandem_core::SecretString;
use tandem_store::{ObjectStore, S3Config, S3Store};

use crate::helpers::{Backend, TestApp};

pub(crate) fn endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:59000".into())
}

/// A fresh bucket on the S3 API; `None` (skip) when it is not running,
/// a failure under `CI=true`.
pub(crate) async fn bucket() -> Option<String> {
    let name = format!("tandem-test-{}", uuid::Uuid::new_v4().simple());
    let created = reqwest::Client::new()
        .put(format!("{}/{name}", endpoint()))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    match created {
        Ok(_) => Some(name),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but the S3 API at {} is unavailable: {e}",
                endpoint()
            )
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: no S3 API at {} ({e}); run moto_server -p 59000",
                endpoint()
            );
            None
        }
    }
}

fn config(bucket: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_owned(),
        region: "us-east-1".into(),
        endpoint: Some(endpoint()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
    }
}

#[tokio::test]
async fn s3_objects_round_trip() {
    let Some(bucket) = bucket().await else {
        return;
    };
    let store = S3Store::new(&config(&bucket)).expect("store");
    assert_eq!(store.get("a/b.bin").await.expect("get"), None);
    store
        .put("a/b.bin", Bytes::from_static(b"one"))
        .await
        .expect("put");
    store
        .put("a/b.bin", Bytes::from_static(b"two"))
        .await
        .expect("replace");
    assert_eq!(
        store.get("a/b.bin").await.expect("get").as_deref(),
        Some(&b"two"[..])
    );
    let big = Bytes::from(vec![7u8; 3 << 20]);
    store.put("big.bin", big.clone()).await.expect("put 3 MB");
    assert_eq!(store.get("big.bin").await.expect("get"), Some(big));
    assert!(store.delete("a/b.bin").await.expect("delete"));
    assert!(!store.delete("a/b.bin").await.expect("delete again"));
    assert!(store.put("../escape", Bytes::new()).await.is_err());
    let wrong = S3Store::new(&config("no-such-bucket-here")).expect("store");
    assert!(
        wrong.put("x", Bytes::new()).await.is_err(),
        "a missing bucket is an error"
    );
}

#[tokio::test]
async fn avatars_live_in_the_bucket_when_one_is_configured() {
    let Some(bucket) = bucket().await else {
        return;
    };
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.storage.uploads_bucket = Some(bucket.clone());
        c.storage.aws.endpoint_url = Some(endpoint());
        c.storage.aws.access_key_id = Some("test".into());
        c.storage.aws.secret_access_key = Some(SecretString::from("test".to_owned()));
    })
    .await;
    let (student, _) = app.signed_up().await;
    let mut photo = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        400,
        300,
        image::Rgb([200, 80, 20]),
    ))
    .write_to(&mut Cursor::new(&mut photo), image::ImageFormat::Jpeg)
    .expect("jpeg");
    let res = reqwest::Client::new()
        .put(format!("{}/api/users/me/avatar", app.url))
        .header(header::COOKIE, student.cookie().expect("cookie"))
        .body(photo)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), StatusCode::CREATED);
    let url = res.json::<serde_json::Value>().await.expect("json")["avatar_url"]
        .as_str()
        .expect("avatar_url")
        .to_owned();
    let key = url.trim_start_matches("/uploads/");
    let stored = S3Store::new(&config(&bucket))
        .expect("store")
        .get(key)
        .await
        .expect("get")
        .expect("the avatar is in the bucket");
    assert!(image::load_from_memory(&stored).is_ok());
    assert!(
        !app.state.config.data_dir.join("objects").exists(),
        "nothing on local disk"
    );
    let variant = reqwest::get(format!(
        "{}/cdn-cgi/image/width=128,format=webp{url}",
        app.url
    ))
    .await
    .expect("variant");
    assert_eq!(variant.status(), StatusCode::OK);
    let img = image::load_from_memory(&variant.bytes().await.expect("bytes")).expect("webp");
    assert_eq!(img.width(), 128);

    // The variant is stored under its source; deleting the account empties
    // the bucket of both (issue 18, finding 20).
    let s3 = S3Store::new(&config(&bucket)).expect("store");
    let variants = format!("variants/uploads/{key}");
    assert_eq!(s3.list(&variants).await.expect("list").len(), 1);
    let folder = key.rsplit_once('/').expect("a user folder").0;
    let password = serde_json::json!({ "password": crate::helpers::PASSWORD });
    let res = student.delete("/api/users/me", Some(password)).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    assert!(s3.list(folder).await.expect("list").is_empty());
    assert!(s3.list(&variants).await.expect("list").is_empty());
}
