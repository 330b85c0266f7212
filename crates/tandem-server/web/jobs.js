// Background jobs as the pages see them: queued work (partner search, the AI
// coach) whose result is polled, ended early by a realtime notice.
import { api } from './api.js';

/**
 * Polls a job until it finishes; resolves with its final status. A `nudge`
 * event (the realtime notice that the job is done) ends the current wait at once.
 */
export async function waitForJob(jobId, { signal, nudge } = {}) {
  const deadline = Date.now() + 120_000;
  for (let delay = 250; Date.now() < deadline; delay = Math.min(delay * 1.5, 2000)) {
    if (signal?.aborted) throw new Error('Cancelled.');
    const status = await api('GET', `/api/jobs/${encodeURIComponent(jobId)}/status`);
    if (status.state === 'completed' || status.state === 'failed') return status;
    const nudged = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), delay);
      const wake = (value) => () => { clearTimeout(timer); resolve(value); };
      signal?.addEventListener('abort', wake(false), { once: true });
      nudge?.addEventListener('nudge', wake(true), { once: true });
    });
    // The notice is sent as the job finishes; its result is stored a moment later.
    if (nudged) delay = 50;
  }
  throw new Error('This is taking longer than expected. Try again in a minute.');
}
