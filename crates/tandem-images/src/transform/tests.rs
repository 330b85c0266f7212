use std::io::Cursor;

use image::DynamicImage;

use super::*;
use crate::options::Policy;

fn photo(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
        .expect("encode");
    out
}

fn options(text: &str) -> Options {
    Options::parse(text, &Policy::default()).expect("valid options")
}

fn decoded(output: &Output) -> DynamicImage {
    image::load_from_memory(&output.bytes).expect("output decodes")
}

#[test]
fn resizes_to_the_requested_width_and_format() {
    let source = photo(1200, 800);
    for (format, expect) in [
        ("jpeg", ImageFormat::Jpeg),
        ("webp", ImageFormat::WebP),
        ("png", ImageFormat::Png),
    ] {
        let out = transform(
            &source,
            &options(&format!("width=720,format={format}")),
            None,
            &Limits::default(),
        )
        .expect("transform");
        assert_eq!(image::guess_format(&out.bytes).expect("format"), expect);
        let img = decoded(&out);
        assert_eq!((img.width(), img.height()), (720, 480));
    }
}

#[test]
fn grayscale_and_cmyk_free_jpegs_decode_to_rgb() {
    let gray = image::GrayImage::from_fn(300, 200, |x, _| image::Luma([(x % 256) as u8]));
    let mut bytes = Vec::new();
    DynamicImage::ImageLuma8(gray)
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
        .expect("encode");
    let out = transform(
        &bytes,
        &options("width=256,format=jpeg"),
        None,
        &Limits::default(),
    )
    .expect("grayscale JPEG");
    assert_eq!((out.width, out.height), (256, 171));
}

#[test]
fn fits_follow_cloudflare() {
    let source = photo(1200, 800);
    let limits = Limits::default();
    let size = |o: &str| {
        let out = transform(&source, &options(o), None, &limits).expect("transform");
        (out.width, out.height)
    };
    assert_eq!(size("width=640,height=640,fit=contain"), (640, 427));
    assert_eq!(size("width=640,height=640,fit=cover"), (640, 640));
    assert_eq!(size("width=640,height=640,fit=pad"), (640, 640));
    assert_eq!(
        size("width=1920,fit=scale-down"),
        (1200, 800),
        "never enlarged"
    );
    assert_eq!(size("width=1920,fit=contain"), (1920, 1280));
    assert_eq!(size("width=1920,height=1920,fit=crop"), (1200, 800));
    assert_eq!(size("width=384,height=384,fit=crop"), (384, 384));
}

#[test]
fn auto_follows_accept() {
    let source = photo(300, 200);
    let o = options("width=256,format=auto");
    let webp = transform(
        &source,
        &o,
        Some("image/avif,image/webp,*/*"),
        &Limits::default(),
    )
    .expect("ok");
    assert_eq!(webp.format, OutputFormat::Webp);
    let jpeg = transform(&source, &o, Some("image/png,*/*;q=0.8"), &Limits::default()).expect("ok");
    assert_eq!(jpeg.format, OutputFormat::Jpeg);
    let refused = transform(&source, &o, Some("image/webp;q=0"), &Limits::default()).expect("ok");
    assert_eq!(refused.format, OutputFormat::Jpeg);
}

/// Width and height from an AVIF file's `ispe` property (no AVIF
/// decoder is built in).
fn avif_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let at = bytes.windows(4).position(|w| w == b"ispe")?;
    let word = |i: usize| {
        bytes
            .get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    Some((word(at + 8)?, word(at + 12)?))
}

#[test]
fn avif_is_made_when_asked_for_by_name() {
    let source = photo(300, 200);
    let avif = transform(
        &source,
        &options("width=64,format=avif"),
        None,
        &Limits::default(),
    )
    .expect("ok");
    assert_eq!(avif.format, OutputFormat::Avif);
    assert_eq!(
        image::guess_format(&avif.bytes).ok(),
        Some(ImageFormat::Avif)
    );
    assert_eq!(variant_type(&avif.bytes), Some("image/avif"));
    assert_eq!(avif_size(&avif.bytes), Some((64, 43)));
}

#[test]
fn sources_are_checked_before_decoding() {
    let limits = Limits::default();
    let o = options("width=256");
    assert!(transform(b"GIF89a but not really", &o, None, &limits).is_err());
    assert!(matches!(
        transform(
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            &o,
            None,
            &limits
        ),
        Err(TransformError::Unsupported)
    ));
    assert!(matches!(
        transform(&[0u8; 100], &o, None, &limits),
        Err(TransformError::Unsupported)
    ));
    let small = Limits {
        max_bytes: 100,
        ..limits
    };
    assert!(matches!(
        transform(&photo(300, 200), &o, None, &small),
        Err(TransformError::TooLarge(_))
    ));
    // A PNG header claiming 30,000 x 30,000 pixels (a decompression bomb).
    use image::ImageEncoder;
    let mut bomb = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bomb)
        .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
        .expect("png");
    bomb[16..20].copy_from_slice(&30_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&30_000u32.to_be_bytes());
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        transform(&bomb, &o, None, &limits),
        Err(TransformError::TooManyPixels { width: 30_000, .. })
    ));
    let truncated = &photo(300, 200)[..200];
    assert!(matches!(
        transform(truncated, &o, None, &limits),
        Err(TransformError::Corrupt(_))
    ));
}

#[test]
fn a_giant_output_is_refused_before_decoding() {
    use image::ImageEncoder;
    let mut tall = Vec::new();
    image::codecs::png::PngEncoder::new(&mut tall)
        .write_image(&[7u8; 1024 * 3], 1, 1024, image::ExtendedColorType::Rgb8)
        .expect("png");
    let o = options("width=2048,dpr=3,fit=contain");
    assert!(matches!(
        transform(&tall, &o, None, &Limits::default()),
        Err(TransformError::OutputTooLarge {
            width: 6144,
            height: 6_291_456,
            ..
        })
    ));
}

#[test]
fn animated_gifs_are_refused() {
    use image::codecs::gif::GifEncoder;
    let frame = || {
        image::Frame::new(image::RgbaImage::from_pixel(
            4,
            4,
            image::Rgba([1, 2, 3, 255]),
        ))
    };
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut gif);
        encoder.encode_frames([frame(), frame()]).expect("gif");
    }
    assert!(matches!(
        transform(&gif, &options("width=16"), None, &Limits::default()),
        Err(TransformError::Animated)
    ));
    let mut still = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut still);
        encoder.encode_frames([frame()]).expect("gif");
    }
    assert!(
        transform(
            &still,
            &options("width=16,format=png"),
            None,
            &Limits::default()
        )
        .is_ok()
    );
}
