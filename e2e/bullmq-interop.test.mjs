// Interop with the unmodified npm `bullmq` on the real Redis, through the
// product: a Node service adds roadmap-style jobs that `tandem serve`'s
// workers complete, and jobs Tandem's API queues are completed by a Node
// BullMQ worker, with Tandem reporting the Node worker's progress and result.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { startTandem } from './tandem.mjs';

const redisUrl = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
const connection = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), maxRetriesPerRequest: null };
const closers = [];

after(async () => {
  for (const close of closers.reverse()) await close();
});

/** `tandem serve` in the distributed mode with BullMQ keys under `prefix`. */
async function distributed(t, prefix, extra = {}) {
  const env = {
    DATABASE_URL: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tandem_test',
    REDIS_URL: redisUrl.href,
    TANDEM_REDIS_PREFIX: `${prefix}:`,
    TANDEM_QUEUE_PREFIX: prefix,
    ...extra,
  };
  try {
    const server = await startTandem(env);
    closers.push(() => server.stop());
    return server;
  } catch (e) {
    if (process.env.CI === 'true') throw e;
    t.skip(`PostgreSQL/Redis unavailable: ${e.message}`);
    return null;
  }
}

/** Signs a student up; returns their id and session cookie. */
async function signUp(server, name) {
  const email = `${name}-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
  const res = await fetch(`${server.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: 'correct horse battery staple', display_name: name }),
  });
  assert.equal(res.status, 201);
  return { id: (await res.json()).id, cookie: res.headers.get('set-cookie').split(';')[0] };
}

test("jobs a Node service adds with BullMQ are completed by Tandem's workers", async (t) => {
  const prefix = `e2e-bull-${Date.now()}-a`;
  const server = await distributed(t, prefix);
  if (!server) return;
  const student = await signUp(server, 'ada');
  const options = { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: 100, removeOnFail: 50 };

  const ai = new Queue('ai-tasks', { connection, prefix });
  const aiEvents = new QueueEvents('ai-tasks', { connection, prefix });
  const matching = new Queue('partner-matching', { connection, prefix });
  const matchingEvents = new QueueEvents('partner-matching', { connection, prefix });
  closers.push(() => Promise.all([ai, aiEvents, matching, matchingEvents].map((q) => q.close())));
  await Promise.all([aiEvents.waitUntilReady(), matchingEvents.waitUntilReady()]);

  // The roadmap's queueAITask(type, data): name = type, data = { type, data }.
  const analysis = await ai.add('progress-analysis', { type: 'progress-analysis', userId: student.id, data: {} }, options);
  const report = await analysis.waitUntilFinished(aiEvents, 30_000);
  assert.equal(report.report.totalHours, 0);
  assert.equal(report.report.trend, 'steady');
  assert.equal(await analysis.getState(), 'completed');

  const find = await matching.add('find-partners', { userId: student.id, preferences: {} }, options);
  const found = await find.waitUntilFinished(matchingEvents, 30_000);
  assert.ok(Array.isArray(found.matches), JSON.stringify(found));

  // A job Tandem cannot do fails for good with a reason BullMQ reports.
  const chat = await ai.add('chat-completion', { type: 'chat-completion', userId: student.id, data: { messages: [] } }, options);
  await assert.rejects(chat.waitUntilFinished(aiEvents, 30_000), /AI provider not configured/);
  assert.equal(await chat.getState(), 'failed');
});

test('jobs Tandem queues are completed by a Node BullMQ worker', async (t) => {
  const prefix = `e2e-bull-${Date.now()}-b`;
  const server = await distributed(t, prefix, { TANDEM_QUEUE_WORKERS: 'false' });
  if (!server) return;
  const student = await signUp(server, 'bob');
  const seen = [];
  const worker = new Worker('ai-tasks', async (job) => {
    seen.push(job);
    await job.updateProgress(42);
    return { reply: `Node read ${job.data.data.messages.length} message(s)`, type: job.data.type };
  }, { connection, prefix });
  closers.push(() => worker.close());

  const res = await fetch(`${server.url}/api/ai/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: student.cookie },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Plan my week' }] }),
  });
  assert.equal(res.status, 202);
  const { jobId } = await res.json();

  let status;
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    const poll = await fetch(`${server.url}/api/jobs/${jobId}/status`, { headers: { cookie: student.cookie } });
    assert.equal(poll.status, 200);
    status = await poll.json();
    if (status.state === 'completed' || status.state === 'failed') break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(status.state, 'completed', JSON.stringify(status));
  assert.deepEqual(status.result, { reply: 'Node read 1 message(s)', type: 'chat-completion' });
  assert.equal(status.progress, 42);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].name, 'chat-completion');
  assert.equal(seen[0].id, jobId);
  assert.equal(seen[0].data.userId, student.id);
  assert.equal(seen[0].opts.attempts, 3);
});
