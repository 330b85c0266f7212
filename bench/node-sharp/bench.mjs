// sharp's side of `tandem-bench images`: resizes SOURCE to WIDTH px wide at
// QUALITY, N times per format with C pipelines in flight (sharp's own
// thread pool does the work), and prints one JSON line per format:
//   {"format":"jpeg","images":N,"seconds":S,"per_second":R,"bytes":B}
// usage: node bench.mjs SOURCE WIDTH QUALITY N C
import { readFileSync } from 'node:fs';
import sharp from 'sharp';

const [source, width, quality, count, concurrency] = process.argv.slice(2);
const input = readFileSync(source);
const n = Number(count);
const c = Number(concurrency);
sharp.cache(false); // like Tandem's endpoint with its cache off

async function run(format) {
  const once = () => {
    const pipeline = sharp(input).rotate().resize({ width: Number(width), withoutEnlargement: true });
    return (format === 'webp' ? pipeline.webp({ quality: Number(quality) }) : pipeline.jpeg({ quality: Number(quality) })).toBuffer();
  };
  for (let i = 0; i < c; i++) await once(); // warm-up
  let next = 0;
  let bytes = 0;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: c }, async () => {
    while (next < n) {
      next += 1;
      bytes = (await once()).length;
    }
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ format, images: n, seconds, per_second: n / seconds, bytes }));
}

await run('jpeg');
await run('webp');
