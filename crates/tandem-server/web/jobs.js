// Pages backed by background jobs: partner search, the AI study coach, and
// the operators' queue overview. `ui` is the shell's toolbox (see app.js).
import { api } from './api.js';

/**
 * Polls a job until it finishes; resolves with its final status. A `nudge`
 * event (the realtime notice that the job is done) ends the current wait at once.
 */
async function waitForJob(jobId, { signal, nudge } = {}) {
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

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function suggestionItem(s, ui, refresh) {
  const li = el('li', 'partner');
  const head = el('div', 'partner-head');
  head.append(el('h3', '', s.displayName || 'A student'), el('span', 'tag', `${Math.round(s.score * 100)}% match`));
  const reasons = el('p', 'muted', s.reasons.join(' · '));
  const subjects = el('p', '', s.sharedSubjects.length ? `Shared: ${s.sharedSubjects.join(', ')}` : '');
  const actions = el('div', 'actions');
  const act = (label, className, path, done) => {
    const b = el('button', className, label);
    b.type = 'button';
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await api('POST', path, {});
        ui.toast(done);
        refresh();
      } catch (e) { ui.toast(e.message); b.disabled = false; }
    });
    return b;
  };
  actions.append(
    act('Add as partner', 'primary', `/api/partners/${s.userId}`, `${s.displayName} is now your study partner.`),
    act('Block', 'secondary', `/api/partners/${s.userId}/block`, `${s.displayName} won't be suggested again.`),
  );
  li.append(head, subjects, reasons, actions);
  return li;
}

/** Partner search: queued matching, announced on realtime, polled as a fallback. */
export async function renderPartners(ui) {
  const root = ui.mount('tpl-partners');
  const form = root.querySelector('#matching-form');
  const list = root.querySelector('#partner-list');
  const state = root.querySelector('#matching-state');
  const aborter = new AbortController();
  const nudge = new EventTarget();
  const socket = ui.channelSocket(`realtime:user:${ui.me().id}`, {}, {
    joined() {}, refused() {}, dropped() {}, presenceState() {}, presenceDiff() {},
    broadcast(event) { if (event === 'matching-complete') nudge.dispatchEvent(new Event('nudge')); },
  });
  ui.onLeave(() => { aborter.abort(); socket.close(); });

  const draw = (matches) => {
    list.replaceChildren(...matches.map((s) => suggestionItem(s, ui, search)));
    state.textContent = matches.length
      ? `${matches.length} suggestion${matches.length === 1 ? '' : 's'}, best first.`
      : 'No matches yet. Add subjects and free time slots to your profile, then search again.';
  };
  async function search() {
    const data = new FormData(form);
    const subjects = String(data.get('subjects') || '').split(',').map((s) => s.trim()).filter(Boolean);
    const preferences = { minOverlapHours: Number(data.get('min_overlap_hours') || 0), limit: 10 };
    if (subjects.length) preferences.subjects = subjects;
    state.textContent = 'Finding your study partners…';
    const res = await api('POST', '/api/partners/matching', { preferences });
    if (res.status === 'completed') return draw(res.matches);
    const status = await waitForJob(res.jobId, { signal: aborter.signal, nudge });
    if (status.state === 'failed') throw new Error(status.error || 'Matching failed.');
    draw(status.result.matches);
  }
  ui.onSubmit(form, search);
  await search().catch((e) => { state.textContent = e.message; });
}

function addBubble(log, who, text, className = '') {
  const li = el('li', `bubble ${who} ${className}`.trim(), text);
  log.append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

/** The AI study coach: chat, progress analysis, engagement prediction. */
export async function renderCoach(ui) {
  const root = ui.mount('tpl-coach');
  const form = root.querySelector('#coach-form');
  const log = root.querySelector('#coach-log');
  const aborter = new AbortController();
  ui.onLeave(() => aborter.abort());
  const turns = [];

  ui.onSubmit(form, async (data) => {
    const content = String(data.get('message') || '').trim();
    if (!content) return;
    turns.push({ role: 'user', content });
    addBubble(log, 'user', content);
    form.reset();
    const pending = addBubble(log, 'coach', 'Thinking…', 'pending');
    try {
      const { jobId } = await api('POST', '/api/ai/chat', { messages: turns.slice(-20) });
      const status = await waitForJob(jobId, { signal: aborter.signal });
      if (status.state === 'failed') throw new Error(status.error);
      pending.textContent = status.result.reply;
      pending.classList.remove('pending');
      turns.push({ role: 'assistant', content: status.result.reply });
    } catch (e) {
      turns.pop();
      pending.textContent = `The coach is unavailable: ${e.message}`;
      pending.classList.replace('pending', 'failed');
    }
  });

  for (const [selector, task] of [['#analyse', 'progress-analysis'], ['#predict', 'engagement-prediction']]) {
    const button = root.querySelector(selector);
    button.addEventListener('click', async () => {
      const target = root.querySelector(`#${task}`);
      button.disabled = true;
      target.textContent = 'Working it out…';
      try {
        const { jobId } = await api('POST', `/api/ai/${task}`, {});
        const status = await waitForJob(jobId, { signal: aborter.signal });
        if (status.state === 'failed') throw new Error(status.error);
        const { report, summary } = status.result;
        const lines = report.highlights || report.topFactors || [];
        const headline = report.risk
          ? `Chance of staying active next week: ${Math.round(report.score * 100)}% (${report.risk} risk).`
          : `${report.totalHours} h studied in all, ${report.hoursLast7Days} h in the last 7 days; trend: ${report.trend}.`;
        target.replaceChildren(el('p', '', headline), ...lines.map((l) => el('p', 'muted', l)));
        if (summary) target.append(el('p', 'summary', summary));
      } catch (e) {
        target.textContent = e.message;
      } finally {
        button.disabled = false;
      }
    });
  }
}

/** Operators: queue sizes, recent failures and analytics archive runs. */
export async function renderQueues(ui) {
  const root = ui.mount('tpl-queues');
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
