//! Object storage behind one trait: [`ObjectStore`]. Keys are relative,
//! slash-separated names (`avatars/<user>/<hash>.jpg`) checked by
//! [`validate_key`], so no key can climb out of the store.
//!
//! [`LocalStore`] keeps objects as files under a folder (the embedded
//! default), writing each through a temporary file and a rename so readers
//! never see half an object. It is not `object_store`'s `LocalFileSystem`,
//! which has the same rename but never fsyncs (0.12's `local.rs` calls
//! neither `sync_all` nor `sync_data`): the archiver purges analytics rows
//! once their archive is written and read back, so a finished streamed
//! write must be on disk, not only in the page cache, or a power loss could
//! lose both copies. [`S3Store`] keeps them in an S3 bucket (AWS or
//! any S3-compatible store via an endpoint override), through the
//! `object_store` crate.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An object's bytes, piece by piece.
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// Size of the pieces an S3 object is uploaded in (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 << 20;
/// Parts of one object in flight at once: with [`PART_BYTES`], an upload
/// buffers at most ~24 MiB however large the object is.
const PARTS_IN_FLIGHT: usize = 2;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key is not a safe relative name.
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    /// The backend failed.
    #[error("object store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The S3 backend failed or is misconfigured.
    #[error("object store: {0}")]
    Backend(String),
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        Self::Backend(e.to_string())
    }
}

/// Whether `key` is a safe object name: 1–512 bytes of `[A-Za-z0-9._-]`
/// segments separated by single slashes, none of them `.` or `..`.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = || StoreError::InvalidKey(key.chars().take(80).collect());
    if key.is_empty() || key.len() > 512 {
        return Err(bad());
    }
    for segment in key.split('/') {
        let safe = segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if segment.is_empty() || segment == "." || segment == ".." || !safe {
            return Err(bad());
        }
    }
    Ok(())
}

/// Where objects live.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// `local` or `s3`.
    fn kind(&self) -> &'static str;
    /// The object, or `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// Stores (or replaces) an object.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError>;
    /// Removes an object; `false` if there was none.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Starts writing an object piece by piece (a multipart upload on S3).
    /// Nothing is visible under `key` until [`ObjectWriter::finish`]; a
    /// writer dropped or aborted before that leaves the old object, if any.
    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError>;
    /// Reads an object piece by piece, or `None` if there is none.
    async fn reader(&self, key: &str) -> Result<Option<ByteStream>, StoreError>;
    /// Every object whose key starts with `prefix/`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;
}

/// An object found by [`ObjectStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An object being written; see [`ObjectStore::writer`].
#[async_trait]
pub trait ObjectWriter: Send {
    /// Appends bytes (waits while earlier parts are still uploading).
    async fn write(&mut self, bytes: Bytes) -> Result<(), StoreError>;
    /// Makes the object visible under its key, all at once.
    async fn finish(self: Box<Self>) -> Result<(), StoreError>;
    /// Gives up: whatever was written is discarded.
    async fn abort(self: Box<Self>);
}

/// Objects as files under a folder.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_owned(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let temp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&temp, &bytes).await?;
        if let Err(e) = tokio::fs::rename(&temp, &path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let temp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create(&temp).await?;
        Ok(Box::new(LocalWriter {
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            temp,
            path,
        }))
    }

    async fn reader(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        let file = match tokio::fs::File::open(self.path(key)?).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 256 << 10];
            let n = file.read(&mut buf).await?;
            buf.truncate(n);
            Ok((n > 0).then(|| (Bytes::from(buf), file)))
        });
        Ok(Some(chunks.boxed()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let root = self.path(prefix)?;
        let mut found = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            while let Some(entry) = entries.next_entry().await? {
                let meta = entry.metadata().await?;
                let path = entry.path();
                if meta.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let key = path
                    .strip_prefix(&self.root)
                    .ok()
                    .and_then(|k| k.to_str())
                    .map(|k| k.replace(std::path::MAIN_SEPARATOR, "/"));
                // Temporary files of unfinished writes are not objects.
                if let Some(key) = key.filter(|k| !k.contains(".tmp-")) {
                    found.push(ObjectInfo {
                        key,
                        size: meta.len(),
                    });
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }
}

/// A file written beside its final name, renamed into place when finished.
struct LocalWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    temp: PathBuf,
    path: PathBuf,
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        self.file.write_all(&bytes).await?;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        let done = async {
            self.file.flush().await?;
            self.file.get_ref().sync_all().await?;
            tokio::fs::rename(&self.temp, &self.path).await
        };
        if let Err(e) = done.await {
            let _ = tokio::fs::remove_file(&self.temp).await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn abort(self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.temp).await;
    }
}

/// Where an S3 bucket is and how to sign for it.
#[derive(Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Region (`us-east-1` when unsure).
    pub region: String,
    /// Endpoint override for S3-compatible stores (MinIO, R2, moto);
    /// `http://` is allowed only here.
    pub endpoint: Option<String>,
    /// Access key id (unset: the instance's credentials chain).
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("secret_access_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Objects in an S3 bucket.
#[derive(Debug)]
pub struct S3Store {
    inner: object_store::aws::AmazonS3,
}

impl S3Store {
    /// A store on `config`'s bucket (no request is made yet).
    pub fn new(config: &S3Config) -> Result<Self, StoreError> {
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        Ok(Self {
            inner: builder.build()?,
        })
    }

    fn path(key: &str) -> Result<object_store::path::Path, StoreError> {
        validate_key(key)?;
        object_store::path::Path::parse(key).map_err(|e| StoreError::Backend(e.to_string()))
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        use object_store::ObjectStore as _;
        match self.inner.get(&Self::path(key)?).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        use object_store::ObjectStore as _;
        self.inner.put(&Self::path(key)?, bytes.into()).await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        use object_store::ObjectStore as _;
        let path = Self::path(key)?;
        match self.inner.head(&path).await {
            Ok(_) => {
                self.inner.delete(&path).await?;
                Ok(true)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        use object_store::ObjectStore as _;
        let upload = self.inner.put_multipart(&Self::path(key)?).await?;
        Ok(Box::new(S3Writer(
            object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES),
        )))
    }

    async fn reader(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        use object_store::ObjectStore as _;
        match self.inner.get(&Self::path(key)?).await {
            Ok(found) => Ok(Some(found.into_stream().map_err(StoreError::from).boxed())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        use object_store::ObjectStore as _;
        let prefix = Self::path(prefix)?;
        let mut found: Vec<ObjectInfo> = self
            .inner
            .list(Some(&prefix))
            .map_ok(|meta| ObjectInfo {
                key: meta.location.to_string(),
                size: meta.size,
            })
            .try_collect()
            .await?;
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }
}

/// A multipart upload: parts go out as they fill, a few at a time.
struct S3Writer(object_store::WriteMultipart);

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        self.0.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.0.put(bytes);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), StoreError> {
        self.0.finish().await?;
        Ok(())
    }

    async fn abort(self: Box<Self>) {
        if let Err(e) = self.0.abort().await {
            // An S3 lifecycle rule for incomplete multipart uploads cleans up.
            tracing::warn!(error = %e, "could not abort a multipart upload");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        for good in ["a", "avatars/u1/abc.jpg", "x-y_z.1/2"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/",
            ".",
            "a/./b",
            "a\\b",
            "a b",
            "é",
            "a/\0",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"a".repeat(513)).is_err());
    }

    #[tokio::test]
    async fn local_objects_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = LocalStore::new(dir.path());
        assert_eq!(store.get("a/b.txt").await.expect("get"), None);
        store
            .put("a/b.txt", Bytes::from_static(b"one"))
            .await
            .expect("put");
        store
            .put("a/b.txt", Bytes::from_static(b"two"))
            .await
            .expect("replace");
        assert_eq!(
            store.get("a/b.txt").await.expect("get").as_deref(),
            Some(&b"two"[..])
        );
        assert!(store.delete("a/b.txt").await.expect("delete"));
        assert!(!store.delete("a/b.txt").await.expect("delete"));
        assert!(store.put("../escape", Bytes::new()).await.is_err());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .expect("dir")
            .collect();
        assert!(leftovers.is_empty(), "no temporary files left behind");
    }
}
