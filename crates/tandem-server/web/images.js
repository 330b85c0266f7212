// The image loader: builds Cloudflare Image Resizing URLs
// (`/cdn-cgi/image/<options>/<source>`) for Tandem's own images, which
// Tandem serves itself or a Cloudflare zone in front of it does. Widths snap
// up to the sizes the server allows (TANDEM_IMAGE_SIZES, which the server
// writes into the page), as Next.js's loader does, times the screen's pixel
// ratio; `format=auto` lets the server pick WebP when the browser takes it.
// External (https://) images pass through.

const SIZES = (document.querySelector('meta[name="tandem-image-sizes"]')?.content || '')
  .split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);

/** Where the page's assets come from (ASSET_PREFIX), '' for this server. */
const PREFIX = document.querySelector('meta[name="tandem-asset-prefix"]')?.content || '';

export function imageUrl(src, { width, quality = 75 } = {}) {
  if (!src || !src.startsWith('/uploads/')) return src;
  const dpr = Math.min(3, Math.max(1, Math.round(window.devicePixelRatio || 1)));
  const wanted = Math.ceil(width * dpr);
  if (!SIZES.length) return src;
  const size = SIZES.find((s) => s >= wanted) || SIZES[SIZES.length - 1];
  return `${PREFIX}/cdn-cgi/image/width=${size},quality=${quality},format=auto${src}`;
}
