// Node BullMQ side of `tandem-bench queue-load`. Prints one JSON line.
//   throughput: adds N no-op jobs, then times a Worker (concurrency C) until
//               all N completed; CPU is this process's during that phase.
//   latency:    a Worker waits; M jobs are added one by one carrying their
//               send time; the processor records pickup delay.
import { Queue, Worker } from 'bullmq';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    mode: { type: 'string', default: 'throughput' },
    queue: { type: 'string' },
    prefix: { type: 'string', default: 'bull' },
    jobs: { type: 'string', default: '50000' },
    concurrency: { type: 'string', default: '50' },
  },
});
const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const jobs = Number(o.jobs);
const concurrency = Number(o.concurrency);
const opts = { removeOnComplete: 100, removeOnFail: 50 };
const queue = new Queue(o.queue, { connection, prefix: o.prefix });
const nowMs = () => performance.timeOrigin + performance.now();

if (o.mode === 'throughput') {
  for (let i = 0; i < jobs; i += 1000) {
    const n = Math.min(1000, jobs - i);
    await queue.addBulk(Array.from({ length: n }, (_, j) => ({ name: 'noop', data: { i: i + j }, opts })));
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let done = 0;
  let worker;
  await new Promise((resolve) => {
    worker = new Worker(o.queue, async () => null, { connection, prefix: o.prefix, concurrency });
    worker.on('completed', () => { if (++done === jobs) resolve(); });
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ jobs, seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6 }));
  await worker.close();
} else {
  const delays = [];
  let resolveAll;
  const all = new Promise((r) => { resolveAll = r; });
  const worker = new Worker(o.queue, async (job) => {
    delays.push(nowMs() - job.data.t);
    if (delays.length === jobs) resolveAll();
    return null;
  }, { connection, prefix: o.prefix, concurrency });
  await worker.waitUntilReady();
  // Let the worker reach its blocking fetch before the first job.
  await new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < jobs; i++) {
    await queue.add('latency', { t: nowMs() }, opts);
    await new Promise((r) => setTimeout(r, 2));
  }
  await all;
  delays.sort((a, b) => a - b);
  const q = (p) => delays[Math.min(delays.length - 1, Math.ceil(delays.length * p) - 1)];
  console.log(JSON.stringify({ jobs, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: delays.at(-1) }));
  await worker.close();
}
await queue.obliterate({ force: true });
await queue.close();
