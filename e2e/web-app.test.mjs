// The web app in a real browser: sign up, edit the profile, reload, log out,
// log back in. Runs `tandem serve` with no configuration (embedded mode,
// Secure cookies on) against Debian's Chromium, driven by playwright-core.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const bin = process.env.TANDEM_BIN ?? new URL('../target/debug/tandem', import.meta.url).pathname;
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Starts the real binary on a free port and waits for the URL it prints. */
async function startTandem() {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-e2e-'));
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('TANDEM_') || key.endsWith('_URL')) delete env[key];
  const child = spawn(bin, ['serve', '--addr', '127.0.0.1:0', '--data-dir', dir], {
    cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('tandem printed no URL within 60 s')), 60_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = line.match(/http:\/\/\S+/);
      if (match) { clearTimeout(timer); resolve(match[0]); }
    });
    child.on('exit', (code) => reject(new Error(`tandem exited early with ${code}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
  await page.close();
});
