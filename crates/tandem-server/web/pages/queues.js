// Operators: queue sizes, recent failures and analytics archive runs.
import { api } from '../api.js';
import { el, mount } from '../shell.js';

/** Operators: queue sizes, recent failures and analytics archive runs. */
export async function renderQueues() {
  const root = mount('tpl-queues');
  const data = await api('GET', '/api/admin/queues');
  root.querySelector('#queue-backend').textContent = `Backend: ${data.backend}`;
  const body = root.querySelector('#queue-rows');
  const failures = root.querySelector('#failure-list');
  for (const q of data.queues) {
    const row = el('tr');
    row.append(el('th', '', q.name), ...['waiting', 'active', 'delayed', 'completed', 'failed'].map((k) => el('td', '', String(q.counts[k]))));
    body.append(row);
    for (const f of q.recentFailures) {
      const when = f.finishedOn ? new Date(f.finishedOn).toLocaleString() : '';
      failures.append(el('li', '', `${q.name} · ${f.name} · ${when} · ${f.attemptsMade} attempt(s): ${f.reason || 'no reason'}`));
    }
  }
  if (!failures.children.length) failures.append(el('li', 'muted', 'No failures.'));
  const runs = await api('GET', '/api/admin/archive-runs');
  const runRows = root.querySelector('#archive-runs');
  for (const r of runs) {
    const row = el('tr');
    const status = r.error ? `${r.status}: ${r.error}` : r.status;
    row.append(
      el('td', '', new Date(r.startedAt).toLocaleString()),
      el('td', '', r.dryRun ? `${r.trigger} (dry run)` : r.trigger),
      el('td', '', status),
      el('td', '', String(r.rows)),
      el('td', '', String(r.objects)),
      el('td', '', `${(r.bytes / 1048576).toFixed(1)} MiB`),
    );
    runRows.append(row);
  }
  if (!runs.length) runRows.append(el('tr', 'muted', 'No archive runs yet.'));
}
