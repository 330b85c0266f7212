// Interop: the unmodified npm client @supabase/realtime-js (2.x, locked at
// its newest release; vsn 2.0.0, binary broadcasts) against `tandem serve`:
// broadcast with self:false and ack:true, presence track/untrack/disconnect
// (on one instance and across two), and channel authorization.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient } from '@supabase/realtime-js';
import { startTandem } from './tandem.mjs';

let tandem;
const clients = [];
const extraServers = [];

before(async () => {
  tandem = await startTandem();
});

after(async () => {
  for (const c of clients) c.disconnect();
  await tandem?.stop();
  for (const s of extraServers) await s.stop();
});

/** Registers a student and fetches a realtime access token with its session cookie. */
async function signUp(name, server = tandem) {
  const email = `${name}-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
  const res = await fetch(`${server.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: 'correct horse battery staple', display_name: name }),
  });
  assert.equal(res.status, 201);
  const cookie = res.headers.get('set-cookie').split(';')[0];
  const { id } = await res.json();
  const tokenRes = await fetch(`${server.url}/api/realtime/token`, { method: 'POST', headers: { cookie } });
  assert.equal(tokenRes.status, 200);
  const { access_token: token } = await tokenRes.json();
  return { id, token };
}

function connect(token, server = tandem) {
  const client = new RealtimeClient(`${server.url.replace('http', 'ws')}/realtime/v1`, {
    params: { apikey: token },
    accessToken: async () => token,
    transport: WebSocket,
  });
  clients.push(client);
  return client;
}

function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else if (status !== 'CLOSED') reject(err ?? new Error(status));
    });
  });
}

/** Joins `topic` (self:false, ack:true, presence keyed by user) and records chat broadcasts and leaves. */
function listen(who, topic, server = tandem) {
  const client = connect(who.token, server);
  const channel = client.channel(topic, {
    config: { broadcast: { self: false, ack: true }, presence: { key: who.id } },
  });
  const got = [];
  const left = [];
  channel.on('broadcast', { event: 'chat' }, (m) => got.push(m.payload));
  channel.on('presence', { event: 'leave' }, ({ key }) => left.push(key));
  return { client, channel, got, left, here: () => Object.keys(channel.presenceState()) };
}

/** Waits (bounded) until `condition()` holds. */
async function until(condition, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('broadcast reaches the others, not the sender, and is acknowledged; presence tracks joins and leaves', async () => {
  const [ada, bob] = [await signUp('ada'), await signUp('bob')];
  const topic = `lobby-${Date.now()}`;
  const open = (who) => listen(who, topic);
  const a = open(ada);
  const b = open(bob);
  await subscribed(a.channel);
  await subscribed(b.channel);

  assert.equal(await a.channel.send({ type: 'broadcast', event: 'chat', payload: { text: 'hi' } }), 'ok');
  await until(() => b.got.length === 1, "bob's message");
  assert.deepEqual(b.got, [{ text: 'hi' }]);
  assert.equal(await b.channel.send({ type: 'broadcast', event: 'chat', payload: { text: 'yo' } }), 'ok');
  await until(() => a.got.length === 1, "ada's message");
  assert.deepEqual(a.got, [{ text: 'yo' }], 'ada received her own broadcast despite self:false');

  assert.equal(await a.channel.track({ name: 'Ada' }), 'ok');
  assert.equal(await b.channel.track({ name: 'Bob' }), 'ok');
  await until(() => a.here().includes(bob.id) && b.here().includes(ada.id), 'both present');
  assert.equal(b.channel.presenceState()[ada.id][0].name, 'Ada');

  assert.equal(await a.channel.untrack(), 'ok');
  await until(() => !b.here().includes(ada.id), 'ada gone after untrack');
  assert.ok(b.left.includes(ada.id));

  b.client.disconnect();
  await until(() => !a.here().includes(bob.id), 'bob gone after disconnect');
  assert.ok(a.left.includes(bob.id));
});

test('every broadcast names its real sender in meta.sender; server event names and foreign presence keys are refused', async () => {
  const [ada, mallory] = [await signUp('ada'), await signUp('mallory')];
  const topic = `forgery-${Date.now()}`;
  const a = listen(ada, topic);
  const seen = [];
  a.channel.on('broadcast', { event: 'rtc' }, (m) => seen.push(m));
  await subscribed(a.channel);
  // Mallory asks for Ada's presence key and claims to be her in the payload.
  const client = connect(mallory.token);
  const m = client.channel(topic, { config: { broadcast: { ack: true }, presence: { key: ada.id } } });
  await subscribed(m);
  assert.equal(await m.send({ type: 'broadcast', event: 'messages', payload: [{ id: 'x', user_id: ada.id }] }), 'error');
  assert.equal(await m.send({ type: 'broadcast', event: 'rtc', payload: { user: ada.id, kind: 'bye' } }), 'ok');
  await until(() => seen.length === 1, 'the signalling message');
  assert.equal(seen[0].meta?.sender, mallory.id, 'the stamp names the real sender');
  assert.equal(await m.track({ name: 'Ada' }), 'ok');
  await until(() => a.here().includes(mallory.id), "mallory's presence under her own id");
  assert.ok(!a.here().includes(ada.id), 'mallory appeared as ada');
});

test('private topics: user:{id} admits only that user', async () => {
  const [ada, eve] = [await signUp('ada'), await signUp('eve')];
  await subscribed(connect(ada.token).channel(`user:${ada.id}`));
  const denied = subscribed(connect(eve.token).channel(`user:${ada.id}`));
  await assert.rejects(denied, /may not join/);
  const noToken = new RealtimeClient(`${tandem.url.replace('http', 'ws')}/realtime/v1`, {
    params: { apikey: 'not-a-token' },
    transport: WebSocket,
  });
  clients.push(noToken);
  await assert.rejects(subscribed(noToken.channel('lobby')), /unauthorized/);
});

test('two instances sharing Redis: broadcast and presence (untrack and disconnect) cross between them', async (t) => {
  // The distributed mode needs the PostgreSQL and Redis the Rust tests use.
  const env = {
    DATABASE_URL: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tandem_test',
    REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    TANDEM_REDIS_PREFIX: `tandem-e2e:${Date.now()}:`,
    TANDEM_REALTIME_SECRET: `e2e-secret-${Math.random().toString(16).slice(2)}-0123456789abcdef`,
  };
  let first;
  try {
    first = await startTandem(env);
  } catch (e) {
    if (process.env.CI === 'true') throw e;
    t.skip(`PostgreSQL/Redis unavailable: ${e.message}`);
    return;
  }
  extraServers.push(first);
  const second = await startTandem(env);
  extraServers.push(second);

  const [ada, bob] = [await signUp('ada', first), await signUp('bob', second)];
  const topic = `study-hall-${Date.now()}`;
  const open = (who, server) => listen(who, topic, server);
  const a = open(ada, first);
  await subscribed(a.channel);
  assert.equal(await a.channel.track({ name: 'Ada' }), 'ok');
  const b = open(bob, second);
  await subscribed(b.channel);
  // Bob joined after Ada tracked, on another instance: his presence_state has her.
  await until(() => b.here().includes(ada.id), "ada in bob's presence state");

  assert.equal(await a.channel.send({ type: 'broadcast', event: 'chat', payload: { text: 'across' } }), 'ok');
  await until(() => b.got.length === 1, 'the broadcast on the other instance');
  assert.deepEqual(b.got, [{ text: 'across' }]);
  assert.equal(a.got.length, 0);

  assert.equal(await b.channel.track({ name: 'Bob' }), 'ok');
  await until(() => a.here().includes(bob.id), 'bob seen from the first instance');
  assert.equal(await a.channel.untrack(), 'ok');
  await until(() => !b.here().includes(ada.id), 'ada gone on the second instance');
  assert.ok(b.left.includes(ada.id));

  // A disconnect, not an untrack: the first instance still hears Bob leave.
  b.client.disconnect();
  await until(() => !a.here().includes(bob.id), 'bob gone from the first instance after his disconnect');
  assert.ok(a.left.includes(bob.id));
});
