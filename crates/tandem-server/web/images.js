// The image loader: builds Cloudflare Image Resizing URLs
// (`/cdn-cgi/image/<options>/<source>`) for Tandem's own images, which
// Tandem serves itself or a Cloudflare zone in front of it does. Widths snap
// up to the sizes the server allows (TANDEM_IMAGE_SIZES), as Next.js's loader
// does, times the screen's pixel ratio; `format=auto` lets the server pick
// WebP when the browser takes it. External (https://) images pass through.

const SIZES = [16, 32, 48, 64, 96, 128, 256, 384, 640, 720, 750, 828, 1080, 1200, 1920, 2048];

/** Where the page's assets come from (ASSET_PREFIX), '' for this server. */
const PREFIX = document.querySelector('meta[name="tandem-asset-prefix"]')?.content || '';

export function imageUrl(src, { width, quality = 75 } = {}) {
  if (!src || !src.startsWith('/uploads/')) return src;
  const dpr = Math.min(3, Math.max(1, Math.round(window.devicePixelRatio || 1)));
  const wanted = Math.ceil(width * dpr);
  const size = SIZES.find((s) => s >= wanted) || SIZES[SIZES.length - 1];
  return `${PREFIX}/cdn-cgi/image/width=${size},quality=${quality},format=auto${src}`;
}
