// Starts the real `tandem` binary for end-to-end tests.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const bin = process.env.TANDEM_BIN ?? new URL('../target/debug/tandem', import.meta.url).pathname;

/**
 * Starts the real binary on a free port and waits for the URL it prints.
 * With no `extraEnv` it runs unconfigured (embedded mode); the caller's
 * TANDEM_* and *_URL variables are never inherited.
 */
export async function startTandem(extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-e2e-'));
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('TANDEM_') || key.endsWith('_URL')) delete env[key];
  // The embedded TURN server on a free port, so test files can run side by side.
  env.TANDEM_TURN_LISTEN = '127.0.0.1:0';
  Object.assign(env, extraEnv);
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
