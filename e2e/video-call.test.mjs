// Video in a study room, end to end: two headless Chromiums with fake cameras
// open the same room, join its call relay-only (iceTransportPolicy 'relay',
// the web app's `localStorage.tandemRelayOnly` switch), and getStats() shows
// a selected candidate pair that is a TURN relay on both ends with video
// flowing. Runs against Tandem's embedded TURN server, and against coturn
// (TURN_SERVER_URL + TURN_SECRET) when coturn is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { chromium } from 'playwright-core';
import { startTandem } from './tandem.mjs';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const password = 'correct horse battery staple';

/** A port free for both TCP and UDP on 127.0.0.1 (TURN listens on both). */
async function freePort() {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address();
    const udp = createSocket('udp4');
    const free = await new Promise((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    udp.close();
    server.close();
    await once(server, 'close');
    if (free) return port;
  }
  throw new Error('no port free for both TCP and UDP');
}

/** Polls `probe` until it returns something truthy; fails with `what` and the last value seen. */
async function until(what, probe, { timeoutMs = 20_000, everyMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last?.ok) return last;
    if (Date.now() > deadline) assert.fail(`${what} within ${timeoutMs / 1000} s; last seen: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** In the page: what the call's (only) connection is using, from getStats(). */
function callStats() {
  return (async () => {
    const [pc] = window.tandemCall?.peers() ?? [];
    if (!pc) return { peers: 0 };
    const stats = await pc.getStats();
    const all = [...stats.values()];
    const transport = all.find((s) => s.type === 'transport');
    const pair = transport?.selectedCandidatePairId
      ? stats.get(transport.selectedCandidatePairId)
      : all.find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    const video = all.filter((s) => s.type === 'inbound-rtp' && s.kind === 'video');
    return {
      peers: window.tandemCall.peers().length,
      connectionState: pc.connectionState,
      pairState: pair?.state,
      local: local && { type: local.candidateType, relayProtocol: local.relayProtocol, address: local.address },
      remote: remote && { type: remote.candidateType, address: remote.address },
      videoBytesReceived: video.reduce((sum, s) => sum + (s.bytesReceived ?? 0), 0),
      framesDecoded: video.reduce((sum, s) => sum + (s.framesDecoded ?? 0), 0),
    };
  })();
}

/** Two students with an account each, members of one study session starting now; returns its id. */
async function sharedRoom(host, guest, stamp) {
  for (const [context, name] of [[host, 'Marie Curie'], [guest, 'Pierre Curie']]) {
    const handle = name.split(' ')[0].toLowerCase();
    const res = await context.request.post('/api/auth/register', {
      data: { email: `${handle}-call-${stamp}@example.com`, password, display_name: name },
    });
    assert.equal(res.status(), 201, await res.text());
  }
  const startsAt = new Date(Math.floor(Date.now() / 60_000) * 60_000);
  const created = await host.request.post('/api/study-sessions', {
    data: {
      title: `Radioactivity ${stamp}`, subject: 'Physics', capacity: 4,
      starts_at: startsAt.toISOString(), ends_at: new Date(startsAt.getTime() + 3_600_000).toISOString(),
    },
  });
  assert.equal(created.status(), 201, await created.text());
  const { id } = await created.json();
  const joined = await guest.request.post(`/api/study-sessions/${id}/join`, { data: {} });
  assert.equal(joined.status(), 200, await joined.text());
  return id;
}

/** Both sides receive video over a relay-relay candidate pair, and it keeps coming. */
async function relayedVideoFlows(t, host, guest) {
  for (const [page, who] of [[host, 'host'], [guest, 'guest']]) {
    let before = 0;
    const seen = await until(`the ${who} receives video over a relay-relay pair`, async () => {
      const s = await page.evaluate(callStats);
      const relayed = s.local?.type === 'relay' && s.remote?.type === 'relay' && s.pairState === 'succeeded';
      const growing = before > 0 && s.videoBytesReceived > before;
      if (relayed && s.videoBytesReceived > 0 && !before) before = s.videoBytesReceived;
      return { ...s, ok: relayed && growing };
    });
    t.diagnostic(`${who}: ${JSON.stringify(seen)}`);
    assert.equal(seen.peers, 1);
    assert.equal(seen.connectionState, 'connected');
    assert.ok(seen.framesDecoded > 0, `${who} decoded no frames`);
  }
}

/**
 * The promise: two students in one study room hold a video call whose media
 * goes only through the TURN server that Tandem hands out. `tandemEnv` is the
 * environment Tandem runs with (which TURN server it offers).
 */
async function callThroughRelay(t, tandemEnv) {
  const tandem = await startTandem(tandemEnv);
  t.after(() => tandem.stop());
  const browsers = [];
  t.after(() => Promise.all(browsers.map((b) => b.close())));
  const contexts = [];
  for (let i = 0; i < 2; i += 1) {
    // Two browsers, as two students' machines would be.
    const browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
        '--autoplay-policy=no-user-gesture-required'],
    });
    browsers.push(browser);
    const context = await browser.newContext({ baseURL: tandem.url });
    await context.addInitScript(() => localStorage.setItem('tandemRelayOnly', '1'));
    contexts.push(context);
  }
  const [hostContext, guestContext] = contexts;
  const id = await sharedRoom(hostContext, guestContext, Date.now());

  const ice = await (await hostContext.request.get('/api/webrtc/ice-servers')).json();
  const turn = ice.iceServers.flatMap((s) => s.urls).filter((u) => /^turns?:/.test(u));
  assert.ok(turn.length, `Tandem offers no TURN server: ${JSON.stringify(ice)}`);

  const host = await hostContext.newPage();
  const guest = await guestContext.newPage();
  for (const page of [host, guest]) {
    page.on('console', (m) => { if (m.type() === 'warning' || m.type() === 'error') console.log(`[browser] ${m.text()}`); });
    page.on('pageerror', (err) => console.log(`[browser] uncaught: ${err.stack || err}`));
    await page.goto(`/#/room/${id}`);
    await page.locator('#connection', { hasText: 'Live' }).waitFor();
  }
  const tiles = (page) => page.getByRole('list', { name: 'Video' }).getByRole('listitem');
  for (const page of [host, guest]) await page.getByRole('button', { name: 'Join video call' }).click();
  await tiles(host).filter({ hasText: 'Pierre Curie' }).waitFor();
  await tiles(guest).filter({ hasText: 'Marie Curie' }).waitFor();
  await tiles(host).filter({ hasText: 'You' }).waitFor();

  // Relay on both ends of the selected pair, and video arriving, still growing.
  try {
    await relayedVideoFlows(t, host, guest);
  } catch (err) {
    // What each side's signalling did, to tell a lost message from a failed relay.
    for (const [page, who] of [[host, 'host'], [guest, 'guest']]) {
      const steps = await page.evaluate(() => window.tandemCall?.trace() ?? []).catch((e) => [String(e)]);
      console.log(`[${who} call trace]\n  ${steps.join('\n  ')}`);
    }
    throw err;
  }

  // The camera button switches the outgoing video track off and on again.
  const camera = host.getByRole('button', { name: 'Camera' });
  const videoEnabled = () => host.evaluate(() => window.tandemCall.localStream().getVideoTracks().map((v) => v.enabled));
  assert.deepEqual(await videoEnabled(), [true]);
  await camera.click();
  assert.equal(await camera.getAttribute('aria-pressed'), 'false');
  assert.deepEqual(await videoEnabled(), [false]);
  await camera.click();
  assert.equal(await camera.getAttribute('aria-pressed'), 'true');
  assert.deepEqual(await videoEnabled(), [true]);
  const mic = host.getByRole('button', { name: 'Microphone' });
  await mic.click();
  assert.deepEqual(await host.evaluate(() => window.tandemCall.localStream().getAudioTracks().map((a) => a.enabled)), [false]);

  // Leaving the call ends the connection on both sides and releases the camera.
  await guest.getByRole('button', { name: 'Leave call' }).click();
  await tiles(host).filter({ hasText: 'Pierre Curie' }).waitFor({ state: 'detached' });
  assert.equal(await host.evaluate(() => window.tandemCall.peers().length), 0);
  assert.equal(await guest.evaluate(() => window.tandemCall.localStream()), null);
  await guest.getByRole('button', { name: 'Join video call' }).waitFor();
}

test("two students video-call in a study room, relayed only through Tandem's embedded TURN server", async (t) => {
  // The TURN server binds port 0 (startTandem's default); the page learns
  // the port from /api/webrtc/ice-servers, so no port can be taken meanwhile.
  await callThroughRelay(t, { TANDEM_TURN_RELAY_IP: '127.0.0.1' });
});

/** Starts coturn with Tandem's shared secret on `port`; waits until it accepts TCP. */
async function startCoturn(t, port, secret) {
  const child = spawn('turnserver', ['-n', '--listening-ip', '127.0.0.1', '--listening-port', String(port),
    '--relay-ip', '127.0.0.1', '--allow-loopback-peers', '--use-auth-secret', '--static-auth-secret', secret,
    '--realm', 'tandem', '--no-tls', '--no-dtls', '--no-cli', '--log-file', 'stdout',
    '--min-port', '50000', '--max-port', '50100'], { stdio: 'ignore' });
  const spawned = await Promise.race([once(child, 'spawn').then(() => true), once(child, 'error').then(() => false)]);
  if (!spawned) return false;
  t.after(() => { child.kill(); });
  await until('coturn accepts connections', () => new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve({ ok: true }); });
    socket.once('error', (e) => resolve({ ok: false, error: e.code }));
  }), { timeoutMs: 10_000, everyMs: 100 });
  return true;
}

test('the same call relayed only through coturn (TURN_SERVER_URL with a shared secret)', async (t) => {
  const port = await freePort();
  const secret = `e2e-${Date.now()}`;
  if (!(await startCoturn(t, port, secret))) {
    if (process.env.CI === 'true') assert.fail('CI=true but coturn is not installed (apt-get install coturn)');
    t.skip('coturn not installed (apt-get install coturn)');
    return;
  }
  await callThroughRelay(t, { TURN_SERVER_URL: `turn:127.0.0.1:${port}?transport=udp`, TURN_SECRET: secret });
});
