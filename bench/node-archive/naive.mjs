// The roadmap's archiveOldAnalytics(), as written there (Prisma's findMany
// replaced by the plain `pg` client, S3's PutObject by a file write): every
// row older than the cutoff is loaded into memory at once, stringified whole,
// gzipped whole, written, then deleted with one DELETE. Prints
// `rows=<n> seconds=<s>`; bench/archive.sh measures its peak RSS.
//
// usage: DATABASE_URL=postgres://... node naive.mjs <out-dir> <archive-after-days>
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import pg from 'pg';

const [outDir, days = '90'] = process.argv.slice(2);
const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
const started = performance.now();
const cutoff = new Date(Date.now() - Number(days) * 86_400_000);
const { rows } = await client.query('SELECT * FROM page_views WHERE occurred_at < $1', [cutoff]);
const archiveDate = cutoff.toISOString().split('T')[0];
writeFileSync(`${outDir}/pageviews-${archiveDate}.json.gz`, gzipSync(JSON.stringify(rows)));
await client.query('DELETE FROM page_views WHERE occurred_at < $1', [cutoff]);
const seconds = (performance.now() - started) / 1000;
console.log(`rows=${rows.length} seconds=${seconds.toFixed(2)}`);
await client.end();
