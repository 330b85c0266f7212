//! Issue 8: `/cdn-cgi/image/` (variant cache off) vs sharp, the same ~2.7 MP
//! photo-like JPEG resized to 720 px wide at quality 80, as JPEG and WebP.
//!
//! The Tandem side is the real server (in this process) answering HTTP
//! requests with `concurrency` in flight; the sharp side is
//! `bench/node-sharp/bench.mjs` with the same number in flight. Prints
//! images/s for both, the output sizes, and Tandem/sharp.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use tandem_core::{Shutdown, SystemClock};
use tandem_server::{Config, Server};

/// `tandem-bench images` options.
#[derive(clap::Args)]
pub struct Args {
    /// Source JPEG (default: a generated 2016x1344 photo-like image, q90).
    #[arg(long)]
    source: Option<PathBuf>,
    /// Resized images per format and side.
    #[arg(long, default_value_t = 300)]
    images: usize,
    /// Requests (Tandem) or pipelines (sharp) in flight (default: cores).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Output width.
    #[arg(long, default_value_t = 720)]
    width: u32,
    /// Encoder quality.
    #[arg(long, default_value_t = 80)]
    quality: u8,
    /// Also write the source used to this path (to rerun with `--source`).
    #[arg(long)]
    save_source: Option<PathBuf>,
    /// Directory of the sharp peer (`npm ci` done there).
    #[arg(long, default_value = "bench/node-sharp")]
    node_dir: PathBuf,
}

/// A deterministic photo-like test image: smooth light, value noise at
/// several scales (texture), hard-edged shapes (detail) and per-pixel grain,
/// so the decoder, resampler and encoder see what they would in a photo
/// rather than flat colour (about 1 MB as JPEG q90, like a phone photo of
/// this size).
pub(crate) fn photo(width: u32, height: u32) -> image::RgbImage {
    let lattice = |x: i64, y: i64, seed: u64| -> f32 {
        let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ seed.wrapping_mul(0x1656_67B1_9E37_79F9);
        h ^= h >> 29;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 32;
        (h & 0xFFFF) as f32 / 65535.0
    };
    let noise = |x: f32, y: f32, seed: u64| -> f32 {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
        let (xi, yi) = (x0 as i64, y0 as i64);
        let a = lattice(xi, yi, seed) + sx * (lattice(xi + 1, yi, seed) - lattice(xi, yi, seed));
        let b = lattice(xi, yi + 1, seed)
            + sx * (lattice(xi + 1, yi + 1, seed) - lattice(xi, yi + 1, seed));
        a + sy * (b - a)
    };
    image::RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let mut fractal = [0f32; 3];
        for (c, value) in fractal.iter_mut().enumerate() {
            let mut amplitude = 0.5;
            let mut scale = 1.0 / 256.0;
            for octave in 0..6 {
                *value += amplitude * noise(fx * scale, fy * scale, (c * 7 + octave) as u64);
                amplitude *= 0.5;
                scale *= 2.0;
            }
        }
        let light = 0.6 + 0.4 * (fx / width as f32 - 0.3).cos() * (fy / height as f32 - 0.4).cos();
        let edge = if ((fx - 700.0).powi(2) + (fy - 600.0).powi(2)).sqrt() < 260.0
            || ((x / 96 + y / 96) % 7 == 0 && y > height / 2)
        {
            0.35
        } else {
            0.0
        };
        // Sensor grain, per pixel and channel.
        let grain = |c: u64| 0.08 * (lattice(i64::from(x), i64::from(y), 100 + c) - 0.5);
        let px = |v: f32, tint: f32, c: u64| {
            ((v * light * tint + edge + grain(c)) * 255.0).clamp(0.0, 255.0) as u8
        };
        image::Rgb([
            px(fractal[0], 1.1, 0),
            px(fractal[1], 0.95, 1),
            px(fractal[2], 0.8, 2),
        ])
    })
}

/// One variant's bytes; an error status is an error.
async fn fetch(client: &reqwest::Client, url: &str) -> Result<bytes::Bytes, reqwest::Error> {
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let source = match &args.source {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => {
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
                .encode_image(&photo(2016, 1344))?;
            bytes
        }
    };
    if let Some(path) = &args.save_source {
        std::fs::write(path, &source)?;
    }
    let (sw, sh) = image::load_from_memory(&source)?.to_rgb8().dimensions();
    let source_path = dir.path().join("source.jpg");
    std::fs::write(&source_path, &source)?;
    let objects = dir.path().join("objects/bench");
    std::fs::create_dir_all(&objects)?;
    std::fs::write(objects.join("source.jpg"), &source)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let concurrency = args.concurrency.unwrap_or(cores).max(1);
    println!(
        "source: {sw}x{sh} ({:.2} MP, {} KB JPEG); {} images per format and side, {concurrency} in flight; {cores} cores",
        f64::from(sw * sh) / 1e6,
        source.len() / 1024,
        args.images
    );

    let tandem = measure_tandem(&args, dir.path(), concurrency).await?;
    let sharp = measure_sharp(&args, &source_path, concurrency).await?;
    println!(
        "\n| format | Tandem images/s | sharp images/s | Tandem / sharp | Tandem bytes | sharp bytes |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (format, per_second, bytes) in tandem {
        let peer = sharp
            .iter()
            .find(|s| s["format"] == format)
            .context("sharp printed no result")?;
        let theirs = peer["per_second"].as_f64().unwrap_or(0.0);
        println!(
            "| {format} | {per_second:.1} | {theirs:.1} | {:.2}x | {bytes} | {} |",
            per_second / theirs,
            peer["bytes"]
        );
    }
    Ok(())
}

/// Tandem's variants per second and sizes, per format, served from `dir`.
async fn measure_tandem(
    args: &Args,
    dir: &std::path::Path,
    concurrency: usize,
) -> anyhow::Result<Vec<(&'static str, f64, usize)>> {
    let mut config = Config::from_lookup(|_| None)?;
    config.http.addr = "127.0.0.1:0".parse()?;
    config.data_dir = dir.to_owned();
    config.turn.listen = None;
    config.queue.workers = false;
    config.images.cache_mb = 0;
    config.http.api_max_per_minute = u32::MAX;
    // Every request makes a new variant here, all from one address.
    config.images.create_per_minute = u32::MAX;
    config.images.queue = usize::MAX;
    if !config.images.sizes.contains(&args.width) {
        config.images.sizes.push(args.width);
    }
    if !config.images.qualities.contains(&args.quality) {
        config.images.qualities.push(args.quality);
    }
    let shutdown = Shutdown::new();
    let server = Server::bind(config, Arc::new(SystemClock), shutdown.clone()).await?;
    let base = format!("http://{}", server.local_addr());
    let running = tokio::spawn(server.run());
    let client = reqwest::Client::new();

    let mut tandem = Vec::new();
    for format in ["jpeg", "webp"] {
        let url = format!(
            "{base}/cdn-cgi/image/width={},quality={},format={format}/uploads/bench/source.jpg",
            args.width, args.quality
        );
        let first = fetch(&client, &url).await?;
        let out = image::load_from_memory(&first)?;
        anyhow::ensure!(
            out.width() == args.width,
            "Tandem returned {} px",
            out.width()
        );
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, url, next, total) =
                    (client.clone(), url.clone(), next.clone(), args.images);
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        fetch(&client, &url).await?;
                    }
                    Ok::<_, reqwest::Error>(())
                })
            })
            .collect();
        for worker in workers {
            worker.await??;
        }
        let per_second = args.images as f64 / started.elapsed().as_secs_f64();
        tandem.push((format, per_second, first.len()));
    }
    shutdown.trigger();
    let _ = running.await;

    Ok(tandem)
}

/// sharp's results (one JSON object per format) from `bench/node-sharp`.
async fn measure_sharp(
    args: &Args,
    source_path: &std::path::Path,
    concurrency: usize,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let output = tokio::process::Command::new("node")
        .current_dir(&args.node_dir)
        .args([
            "bench.mjs",
            &source_path.to_string_lossy(),
            &args.width.to_string(),
            &args.quality.to_string(),
            &args.images.to_string(),
            &concurrency.to_string(),
        ])
        .output()
        .await
        .context("running node bench/node-sharp/bench.mjs (npm ci there first)")?;
    anyhow::ensure!(
        output.status.success(),
        "sharp bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
