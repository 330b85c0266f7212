// The web app in a real browser: sign up, edit the profile, reload, log out,
// log back in; two students meet in a study room and earn achievements. Runs `tandem serve` with no configuration (embedded mode,
// Secure cookies on) against Debian's Chromium, driven by playwright-core.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startTandem } from './tandem.mjs';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** What a `datetime-local` input shows for `date` in `timeZone`: `YYYY-MM-DDTHH:MM`. */
function localInputValue(date, timeZone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(date).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

let tandem;
let browser;

before(async () => {
  tandem = await startTandem();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await tandem?.stop();
});

test('a student signs up, edits the profile, reloads, logs out and back in', async () => {
  const page = await browser.newPage();
  const email = `e2e-${Date.now()}@example.com`;
  const password = 'correct horse battery staple';

  await page.goto(tandem.url);
  await page.waitForURL(/#\/login$/);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.waitForURL(/#\/signup$/);

  // A weak password is refused with the server's message beside the field.
  const signup = page.locator('#signup-form');
  await signup.getByLabel('Your name').fill('Ada Lovelace');
  await signup.getByLabel('E-mail').fill(email);
  await signup.getByLabel('Password').fill('1234567890');
  await signup.getByRole('button', { name: 'Sign up' }).click();
  await signup.locator('.field-error').waitFor();
  assert.match(await signup.locator('.field-error').innerText(), /too easy to guess/);

  await signup.getByLabel('Password').fill(password);
  await signup.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL(/#\/profile$/);
  await page.getByRole('heading', { name: 'Hi, Ada Lovelace' }).waitFor();

  const form = page.locator('#profile-form');
  await form.getByLabel('Subjects').fill('Analytical engines, Poetry');
  await form.getByLabel('Level').selectOption('advanced');
  await form.getByLabel('Timezone').fill('Europe/London');
  await form.getByLabel('About you').fill('I like numbers and notes.');
  await form.getByRole('button', { name: 'Add a time slot' }).click();
  await form.getByRole('button', { name: 'Save profile' }).click();
  await page.locator('#toast', { hasText: 'Profile saved' }).waitFor();

  await page.reload();
  await page.getByRole('heading', { name: 'Hi, Ada Lovelace' }).waitFor();
  assert.equal(await form.getByLabel('Subjects').inputValue(), 'Analytical engines, Poetry');
  assert.equal(await form.getByLabel('About you').inputValue(), 'I like numbers and notes.');
  assert.equal(await form.getByLabel('Level').inputValue(), 'advanced');
  assert.equal(await form.getByLabel('Timezone').inputValue(), 'Europe/London');
  assert.equal(await page.locator('.window-row').count(), 1);

  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name.includes('tandem_session'));
  assert.ok(session, 'session cookie stored');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  assert.equal(await page.evaluate(() => document.cookie), '', 'session cookie readable by scripts');

  await page.getByRole('link', { name: 'Devices' }).click();
  await page.getByText('This device').waitFor();

  await page.getByRole('button', { name: 'Log out' }).first().click();
  await page.waitForURL(/#\/login$/);
  await page.reload();
  await page.waitForURL(/#\/login$/);
  const stillIn = await page.evaluate(async () => (await fetch('/api/users/me')).status);
  assert.equal(stillIn, 401);

  const login = page.locator('#login-form');
  await login.getByLabel('E-mail').fill(email);
  await login.getByLabel('Password').fill('wrong password here');
  await login.getByRole('button', { name: 'Log in' }).click();
  await login.locator('.form-error', { hasText: 'Invalid e-mail or password' }).waitFor();
  await login.getByLabel('Password').fill(password);
  await login.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/#\/profile$/);
  assert.equal(await form.getByLabel('About you').inputValue(), 'I like numbers and notes.');

  // The app reports page views in batches (every few seconds, and when hidden).
  const reported = page.waitForResponse((r) => r.url().endsWith('/api/analytics/events'));
  await page.getByRole('link', { name: 'Devices' }).click();
  await page.getByText('This device').waitFor();
  await page.evaluate(() => dispatchEvent(new Event('pagehide')));
  const report = await reported;
  assert.equal(report.status(), 202);
  assert.ok(report.request().postDataJSON().events.some((e) => e.type === 'pageView' && e.path.startsWith('/')));
  await page.close();
});

test('two students meet in a study room and earn achievements', async () => {
  const password = 'correct horse battery staple';
  const stamp = Date.now();
  // Different time zones on purpose: the form takes local times, the API stores instants.
  const hostZone = 'Asia/Kolkata';
  const hostContext = await browser.newContext({ baseURL: tandem.url, timezoneId: hostZone });
  const guestContext = await browser.newContext({ baseURL: tandem.url, timezoneId: 'America/New_York' });
  try {
    for (const [context, name, handle] of [[hostContext, 'Grace Hopper', 'grace'], [guestContext, 'Alan Turing', 'alan']]) {
      const res = await context.request.post('/api/auth/register', {
        data: { email: `${handle}-${stamp}@example.com`, password, display_name: name },
      });
      assert.equal(res.status(), 201, await res.text());
    }
    const host = await hostContext.newPage();
    const guest = await guestContext.newPage();

    // The host schedules a session through the form; empty fields are refused beside the field first.
    await host.goto('/');
    await host.getByRole('heading', { name: 'Hi, Grace Hopper' }).waitFor();
    await host.getByRole('link', { name: 'Study rooms' }).click();
    await host.waitForURL(/#\/rooms$/);
    const form = host.locator('#session-form');
    await form.getByRole('button', { name: 'Schedule session' }).click();
    await form.locator('.field-error').first().waitFor();
    assert.equal(await form.getByLabel('Title').getAttribute('aria-invalid'), 'true');

    const title = `Thermodynamics revision ${stamp}`;
    // A drop-in session starting now (this minute): achievements count sessions that have started.
    const startsAt = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    const endsAt = new Date(startsAt.getTime() + 90 * 60_000);
    await form.getByLabel('Title').fill(title);
    await form.getByLabel('Subject').fill('Physics');
    await form.getByLabel('Starts').fill(localInputValue(startsAt, hostZone));
    await form.getByLabel('Ends').fill(localInputValue(endsAt, hostZone));
    assert.equal(await form.getByLabel('Seats').inputValue(), '4');
    await form.getByLabel('Description').fill('Entropy and the second law, past papers.');
    await form.getByRole('button', { name: 'Schedule session' }).click();
    await host.locator('#toast', { hasText: `Scheduled “${title}”` }).waitFor();
    assert.equal(await form.locator('.field-error').count(), 0);

    const hostMine = host.getByRole('list', { name: 'My sessions' }).getByRole('listitem').filter({ hasText: title });
    await hostMine.getByText('1 / 4 joined').waitFor();
    await hostMine.getByRole('button', { name: `Cancel ${title}` }).waitFor();
    const hostUpcoming = host.getByRole('list', { name: 'Upcoming sessions' }).getByRole('listitem').filter({ hasText: title });
    await hostUpcoming.getByText('Your session').waitFor();
    const mine = await (await hostContext.request.get('/api/study-sessions/mine')).json();
    const created = mine.find((s) => s.title === title);
    assert.ok(created, 'session listed as mine');
    assert.equal(Date.parse(created.starts_at), startsAt.getTime(), 'local start time sent as the right instant');
    assert.equal(Date.parse(created.ends_at), endsAt.getTime());
    assert.equal(created.subject, 'Physics');
    assert.equal(created.capacity, 4);

    // The guest finds it among the upcoming sessions and joins.
    await guest.goto('/#/rooms');
    const card = guest.getByRole('list', { name: 'Upcoming sessions' }).getByRole('listitem').filter({ hasText: title });
    await card.getByText('1 / 4 joined').waitFor();
    await card.getByRole('button', { name: 'Join' }).click();
    await card.getByText('Joined', { exact: true }).waitFor();
    await card.getByText('2 / 4 joined').waitFor();
    assert.equal(await card.getByRole('button', { name: 'Join' }).count(), 0);
    await card.getByText("Who's in").click();
    await card.getByText('Grace Hopper').waitFor();
    await card.getByText('Alan Turing (you)').waitFor();
    const guestMine = guest.getByRole('list', { name: 'My sessions' }).getByRole('listitem').filter({ hasText: title });
    await guestMine.getByRole('button', { name: `Leave ${title}` }).waitFor();

    // The host sees the new member after a reload.
    await host.reload();
    await hostMine.getByText('2 / 4 joined').waitFor();
    await hostUpcoming.getByText('2 / 4 joined').waitFor();

    // Achievements: both are in a session that has started; only the host runs one.
    const achievement = (page, name) => page.getByRole('list', { name: 'Achievements' }).getByRole('listitem')
      .filter({ has: page.getByRole('heading', { name, exact: true }) });
    await guest.getByRole('link', { name: 'Achievements' }).click();
    await guest.waitForURL(/#\/achievements$/);
    await achievement(guest, 'First session').getByText(/^Earned /).waitFor();
    assert.match(await achievement(guest, 'First session').getAttribute('class'), /\bearned\b/);
    await achievement(guest, 'Study buddy').getByText(/^Earned /).waitFor();
    assert.match(await achievement(guest, 'Host').innerText(), /Not earned yet/);
    assert.match(await achievement(guest, 'Host').getAttribute('class'), /\blocked\b/);

    await host.getByRole('link', { name: 'Achievements' }).click();
    await host.waitForURL(/#\/achievements$/);
    await achievement(host, 'Host').getByText(/^Earned /).waitFor();
    assert.match(await achievement(host, 'Host').getAttribute('class'), /\bearned\b/);
  } finally {
    await hostContext.close();
    await guestContext.close();
  }
});

test('two students chat live in a study room, see who is online and who is typing', async () => {
  const password = 'correct horse battery staple';
  const stamp = Date.now();
  const hostContext = await browser.newContext({ baseURL: tandem.url });
  const guestContext = await browser.newContext({ baseURL: tandem.url });
  try {
    const hostName = 'Ada Lovelace';
    const guestName = 'Charles Babbage';
    for (const [context, name, handle] of [[hostContext, hostName, 'ada'], [guestContext, guestName, 'charles']]) {
      const res = await context.request.post('/api/auth/register', {
        data: { email: `${handle}-room-${stamp}@example.com`, password, display_name: name },
      });
      assert.equal(res.status(), 201, await res.text());
    }
    const title = `Difference engines ${stamp}`;
    const startsAt = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    const endsAt = new Date(startsAt.getTime() + 60 * 60_000);
    const created = await hostContext.request.post('/api/study-sessions', {
      data: { title, subject: 'Mathematics', starts_at: startsAt.toISOString(), ends_at: endsAt.toISOString(), capacity: 4 },
    });
    assert.equal(created.status(), 201, await created.text());
    const { id } = await created.json();
    const joined = await guestContext.request.post(`/api/study-sessions/${id}/join`, { data: {} });
    assert.equal(joined.status(), 200, await joined.text());

    // The host opens the room from the "My sessions" card; the guest goes straight to it.
    const host = await hostContext.newPage();
    const guest = await guestContext.newPage();
    await host.goto('/#/rooms');
    const hostCard = host.getByRole('list', { name: 'My sessions' }).getByRole('listitem').filter({ hasText: title });
    await hostCard.getByRole('link', { name: `Open room ${title}` }).click();
    await host.waitForURL(new RegExp(`#/room/${id}$`));
    await guest.goto(`/#/room/${id}`);
    for (const page of [host, guest]) {
      await page.getByRole('heading', { name: title }).waitFor();
      await page.locator('#connection', { hasText: 'Live' }).waitFor();
    }

    // Each sees the other online.
    const online = (page) => page.getByRole('list', { name: 'Online' });
    await online(host).getByText(guestName, { exact: true }).waitFor();
    await online(host).getByText(`${hostName} (you)`).waitFor();
    await online(guest).getByText(hostName, { exact: true }).waitFor();
    await online(guest).getByText(`${guestName} (you)`).waitFor();

    // The guest types: the host sees it, the guest doesn't see their own indicator.
    const guestBox = guest.getByRole('textbox', { name: 'Message' });
    await guestBox.pressSequentially('Hello from');
    await host.locator('#typing', { hasText: `${guestName} is typing…` }).waitFor();
    assert.equal(await guest.locator('#typing').innerText(), '');

    // Messages appear for both, once each.
    const messages = (page) => page.getByRole('list', { name: 'Messages' });
    await guestBox.fill('Hello from the guest');
    await guestBox.press('Enter');
    await messages(host).getByText('Hello from the guest').waitFor();
    await messages(guest).getByText('Hello from the guest').waitFor();
    assert.equal(await guestBox.inputValue(), '');
    // A message ends the sender's typing indicator.
    await host.locator('#typing', { hasText: /^$/ }).waitFor();

    await host.getByRole('textbox', { name: 'Message' }).fill('Welcome! Shall we start with chapter 3?');
    await host.getByRole('button', { name: 'Send' }).click();
    await messages(guest).getByText('Welcome! Shall we start with chapter 3?').waitFor();
    await messages(host).getByText('Welcome! Shall we start with chapter 3?').waitFor();
    assert.equal(await messages(host).getByRole('listitem').count(), 2, 'no duplicates from POST + broadcast');
    assert.equal(await messages(guest).getByRole('listitem').count(), 2);
    await messages(host).getByRole('listitem').filter({ hasText: 'Hello from the guest' }).getByText(guestName).waitFor();

    await guest.evaluate(() => window.scrollTo(0, 0));
    await guest.screenshot({ path: '/tmp/room.png' });

    // History survives a reload, in order.
    await host.reload();
    await messages(host).getByText('Welcome! Shall we start with chapter 3?').waitFor();
    assert.deepEqual(
      (await messages(host).locator('.message-body').allInnerTexts()),
      ['Hello from the guest', 'Welcome! Shall we start with chapter 3?'],
    );
    await online(host).getByText(guestName, { exact: true }).waitFor();

    // Someone who isn't a member gets a friendly message, not the chat.
    const strangerContext = await browser.newContext({ baseURL: tandem.url });
    try {
      const res = await strangerContext.request.post('/api/auth/register', {
        data: { email: `stranger-room-${stamp}@example.com`, password, display_name: 'Stranger' },
      });
      assert.equal(res.status(), 201, await res.text());
      const stranger = await strangerContext.newPage();
      await stranger.goto(`/#/room/${id}`);
      await stranger.getByRole('alert').filter({ hasText: 'Only members can enter this room' }).waitFor();
      assert.equal(await stranger.getByRole('list', { name: 'Messages' }).count(), 0);
    } finally {
      await strangerContext.close();
    }

    // Leaving the page closes the socket: the host drops off the guest's list.
    await host.getByRole('link', { name: 'Study rooms' }).click();
    await host.waitForURL(/#\/rooms$/);
    await online(guest).getByText(hostName, { exact: true }).waitFor({ state: 'detached' });
  } finally {
    await hostContext.close();
    await guestContext.close();
  }
});

test('a student finds a study partner and asks the coach', async () => {
  const password = 'correct horse battery staple';
  const stamp = Date.now();
  const subject = `Compilers ${stamp}`;
  // The future partner, through the API.
  const reg = await fetch(`${tandem.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `grace-${stamp}@example.com`, password, display_name: `Grace ${stamp}` }),
  });
  assert.equal(reg.status, 201);
  const cookie = reg.headers.get('set-cookie').split(';')[0];
  const patch = await fetch(`${tandem.url}/api/users/me`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json', cookie },
    body: JSON.stringify({ subjects: [subject], timezone: 'UTC', availability: [{ day: 'mon', start: '17:00', end: '21:00' }] }),
  });
  assert.equal(patch.status, 200);

  const page = await browser.newPage();
  await page.goto(`${tandem.url}/#/signup`);
  const signup = page.locator('#signup-form');
  await signup.getByLabel('Your name').fill(`Alan ${stamp}`);
  await signup.getByLabel('E-mail').fill(`alan-${stamp}@example.com`);
  await signup.getByLabel('Password').fill(password);
  await signup.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL(/#\/profile$/);
  const form = page.locator('#profile-form');
  await form.getByLabel('Subjects').fill(subject);
  await form.getByLabel('Timezone').fill('UTC');
  await form.getByRole('button', { name: 'Add a time slot' }).click();
  await form.getByRole('button', { name: 'Save profile' }).click();
  await page.locator('#toast', { hasText: 'Profile saved' }).waitFor();

  await page.getByRole('link', { name: 'Partners' }).click();
  const grace = page.locator('.partner', { hasText: `Grace ${stamp}` });
  await grace.waitFor();
  assert.match(await grace.innerText(), /shared subject/);
  await grace.getByRole('button', { name: 'Add as partner' }).click();
  await page.locator('#toast', { hasText: 'is now your study partner' }).waitFor();
  await grace.waitFor({ state: 'detached' });

  await page.getByRole('link', { name: 'Coach' }).click();
  await page.getByRole('button', { name: 'Analyse my progress' }).click();
  await page.getByText('h studied in all').waitFor();
  await page.getByLabel('Message').fill('How should I plan my exam week?');
  await page.getByRole('button', { name: 'Ask' }).click();
  await page.locator('.bubble.failed', { hasText: 'AI provider not configured' }).waitFor();
  await page.close();
});

test('a profile photo is shown at one of the sizes the server makes (TANDEM_IMAGE_SIZES)', async () => {
  const sized = await startTandem({ TANDEM_IMAGE_SIZES: '72,144' });
  const page = await browser.newPage();
  try {
    await page.goto(sized.url);
    await page.getByRole('link', { name: 'Create an account' }).click();
    const signup = page.locator('#signup-form');
    await signup.getByLabel('Your name').fill('Grace Hopper');
    await signup.getByLabel('E-mail').fill(`e2e-photo-${Date.now()}@example.com`);
    await signup.getByLabel('Password').fill('correct horse battery staple');
    await signup.getByRole('button', { name: 'Sign up' }).click();
    await page.getByRole('heading', { name: 'Hi, Grace Hopper' }).waitFor();

    // A 200×200 PNG, drawn by the browser itself.
    const png = await page.evaluate(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = 200;
      canvas.height = 200;
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#3a6ea5';
      ctx.fillRect(0, 0, 200, 200);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
      return [...new Uint8Array(await blob.arrayBuffer())];
    });
    await page.locator('#avatar-file').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    await page.locator('#toast', { hasText: 'Photo updated' }).waitFor();
    const img = page.locator('#avatar img');
    await img.waitFor();
    // Shown 64 px wide at a pixel ratio of 1: the smallest configured size that covers it.
    assert.match(await img.getAttribute('src'), /^\/cdn-cgi\/image\/width=72,quality=75,format=auto\/uploads\/avatars\//);
    await page.waitForFunction(() => document.querySelector('#avatar img')?.naturalWidth === 72);
  } finally {
    await page.close();
    await sized.stop();
  }
});
