//! Object storage: the uploads bucket (or a folder in the data dir), the
//! analytics archive's bucket, and how to reach S3.

use tandem_core::SecretString;

use super::{ConfigError, Env};

/// S3 access shared by every bucket Tandem uses.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// `AWS_REGION` (default `us-east-1`).
    pub region: String,
    /// `AWS_ACCESS_KEY_ID` (unset: the instance's credentials).
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<SecretString>,
    /// `AWS_ENDPOINT_URL`: an S3-compatible endpoint (MinIO, R2, moto).
    pub endpoint_url: Option<String>,
}

/// Where uploads live.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// `UPLOADS_BUCKET`: S3 bucket for uploads and image variants (unset: a
    /// folder under the data dir).
    pub uploads_bucket: Option<String>,
    /// `AWS_*`: how to reach the buckets.
    pub aws: AwsSettings,
}

impl StorageSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            uploads_bucket: env.get("UPLOADS_BUCKET"),
            aws: AwsSettings {
                region: env.text("AWS_REGION", "us-east-1"),
                access_key_id: env.get("AWS_ACCESS_KEY_ID"),
                secret_access_key: env.secret("AWS_SECRET_ACCESS_KEY"),
                endpoint_url: env.get("AWS_ENDPOINT_URL"),
            },
        })
    }
}

/// Archiving old analytics.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// `ARCHIVE_BUCKET`: S3 bucket for analytics archives (unset: the
    /// `archive` folder under the data dir).
    pub bucket: Option<String>,
    /// `ARCHIVE_AFTER_DAYS`: analytics older than this are archived.
    pub after_days: u32,
    /// `ARCHIVE_SCHEDULE`: when the built-in scheduler archives (a cron
    /// expression in UTC, default Sundays 03:00; `off`: never).
    pub schedule: Option<tandem_archive::Schedule>,
    /// `CRON_SECRET`: bearer token of `GET /api/cron/archive-analytics`
    /// (unset: the endpoint is off).
    pub cron_secret: Option<SecretString>,
}

impl ArchiveSettings {
    pub(super) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let default_days = tandem_archive::ArchiveOptions::default().after.num_days();
        Ok(Self {
            bucket: env.get("ARCHIVE_BUCKET"),
            after_days: env.count(
                "ARCHIVE_AFTER_DAYS",
                u32::try_from(default_days).unwrap_or(90),
            )?,
            schedule: match env.get("ARCHIVE_SCHEDULE").as_deref().map(str::trim) {
                Some("off") => None,
                other => {
                    let expression = other.unwrap_or("0 3 * * 0");
                    Some(tandem_archive::Schedule::parse(expression).map_err(|_| {
                        env.error(
                            "ARCHIVE_SCHEDULE",
                            expression,
                            "expected a cron expression like 0 3 * * 0, or off",
                        )
                    })?)
                }
            },
            cron_secret: env.secret("CRON_SECRET"),
        })
    }
}
