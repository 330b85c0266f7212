// Partner search: queued matching, announced on realtime, polled as a fallback.
import { api } from '../api.js';
import { waitForJob } from '../jobs.js';
import { channelSocket } from '../realtime.js';
import { currentUser, el, mount, onLeave, onSubmit, toast } from '../shell.js';

function suggestionItem(s, refresh) {
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
        toast(done);
        refresh();
      } catch (e) { toast(e.message); b.disabled = false; }
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
export async function renderPartners() {
  const root = mount('tpl-partners');
  const form = root.querySelector('#matching-form');
  const list = root.querySelector('#partner-list');
  const state = root.querySelector('#matching-state');
  const aborter = new AbortController();
  const nudge = new EventTarget();
  const socket = channelSocket(`realtime:user:${currentUser().id}`, {}, {
    joined() {}, refused() {}, dropped() {}, presenceState() {}, presenceDiff() {},
    broadcast(event) { if (event === 'matching-complete') nudge.dispatchEvent(new Event('nudge')); },
  });
  onLeave(() => { aborter.abort(); socket.close(); });

  const draw = (matches) => {
    list.replaceChildren(...matches.map((s) => suggestionItem(s, search)));
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
  onSubmit(form, search);
  await search().catch((e) => { state.textContent = e.message; });
}
