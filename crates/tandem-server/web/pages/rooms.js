// Study rooms: schedule, browse, join, leave, cancel.
import { api, ApiError } from '../api.js';
import {
  badge, button, clearProblem, currentUser, emptyItem, initials, mount, onSubmit, showError, toast,
} from '../shell.js';
import { describeTimes, localInputValue, monthFormat, roomState } from '../times.js';

async function loadMembers(id, list) {
  const detail = await api('GET', `/api/study-sessions/${id}`);
  list.replaceChildren(...detail.members.map((m) => {
    const li = document.createElement('li');
    const dot = document.createElement('span');
    dot.className = 'mini-avatar';
    dot.textContent = initials(m.display_name);
    const name = document.createElement('span');
    name.textContent = m.user_id === currentUser().id ? `${m.display_name} (you)` : m.display_name;
    li.append(dot, name);
    if (m.role === 'owner') li.append(badge('Host', 'subtle'));
    return li;
  }));
}

/** One session card; `actions` go on its right-hand side. */
function sessionCard(s, { actions = [], labels = [] } = {}) {
  const li = document.getElementById('tpl-session').content.firstElementChild.cloneNode(true);
  const start = new Date(s.starts_at);
  const state = roomState(s);
  li.classList.add(state);
  li.dataset.id = s.id;
  li.querySelector('.month').textContent = monthFormat.format(start);
  li.querySelector('.day').textContent = String(start.getDate());
  li.querySelector('.session-title').textContent = s.title;
  li.querySelector('.subject').textContent = s.subject;
  const head = li.querySelector('.session-head');
  if (state === 'cancelled') head.append(badge('Cancelled', 'muted-badge'));
  else if (state === 'ended') head.append(badge('Ended', 'muted-badge'));
  else if (state === 'live') head.append(badge('Live now', 'live'));
  head.append(...labels);
  li.querySelector('.session-time').textContent = describeTimes(s);
  const desc = li.querySelector('.session-desc');
  if (s.description) desc.textContent = s.description;
  else desc.remove();
  li.querySelector('.seats-text').textContent = `${s.member_count} / ${s.capacity} joined`;
  const fill = li.querySelector('.meter-fill');
  fill.style.width = `${Math.min(100, (100 * s.member_count) / s.capacity)}%`;
  fill.classList.toggle('full', s.member_count >= s.capacity);
  const details = li.querySelector('details');
  details.addEventListener('toggle', () => {
    if (details.open) loadMembers(s.id, details.querySelector('.member-list')).catch(showError);
  });
  li.querySelector('.session-action').append(...actions);
  return li;
}

/** Runs a join/leave/cancel, says how it went, and redraws both lists. */
async function sessionAction(el, path, done, refresh) {
  el.disabled = true;
  try {
    const detail = await api('POST', path, {});
    toast(done(detail));
  } catch (err) {
    showError(err);
  }
  await refresh();
}

function upcomingActions(s, mine, refresh) {
  if (s.owner_id === currentUser().id) return [badge('Your session', 'brand')];
  if (mine.has(s.id)) return [badge('Joined', 'ok')];
  if (s.member_count >= s.capacity) return [badge('Full', 'muted-badge')];
  const join = button('Join', 'primary small', () => sessionAction(join, `/api/study-sessions/${s.id}/join`,
    (d) => `You joined “${d.title}”`, refresh));
  join.setAttribute('aria-label', `Join ${s.title}`);
  return [join];
}

function openRoomLink(s) {
  const a = document.createElement('a');
  a.className = 'button secondary small';
  a.href = `#/room/${s.id}`;
  a.textContent = 'Open room';
  a.setAttribute('aria-label', `Open room ${s.title}`);
  return a;
}

function mineActions(s, refresh) {
  const state = roomState(s);
  if (state === 'cancelled') return [];
  if (state === 'ended') return [openRoomLink(s)];
  return [openRoomLink(s), ...mineOnlyActions(s, refresh)];
}

function mineOnlyActions(s, refresh) {
  if (s.owner_id === currentUser().id) {
    const cancel = button('Cancel', 'secondary danger small', () => {
      if (!window.confirm(`Cancel “${s.title}” for everyone who joined?`)) return;
      sessionAction(cancel, `/api/study-sessions/${s.id}/cancel`, (d) => `Cancelled “${d.title}”`, refresh);
    });
    cancel.setAttribute('aria-label', `Cancel ${s.title}`);
    return [cancel];
  }
  const leave = button('Leave', 'secondary small', () => sessionAction(leave, `/api/study-sessions/${s.id}/leave`,
    (d) => `You left “${d.title}”`, refresh));
  leave.setAttribute('aria-label', `Leave ${s.title}`);
  return [leave];
}

async function drawSessions(upcomingList, mineList) {
  const [upcoming, mine] = await Promise.all([
    api('GET', '/api/study-sessions'), api('GET', '/api/study-sessions/mine'),
  ]);
  if (!upcomingList.isConnected) return; // navigated away meanwhile
  const refresh = () => drawSessions(upcomingList, mineList).catch(showError);
  const mineIds = new Set(mine.map((s) => s.id));
  upcomingList.replaceChildren(...(upcoming.length
    ? upcoming.map((s) => sessionCard(s, { actions: upcomingActions(s, mineIds, refresh) }))
    : [emptyItem('No sessions scheduled yet. Be the first: schedule one and invite others to join.')]));
  mineList.replaceChildren(...(mine.length
    ? mine.map((s) => sessionCard(s, {
      actions: mineActions(s, refresh),
      labels: s.owner_id === currentUser().id ? [badge('Hosting', 'brand')] : [],
    }))
    : [emptyItem('Sessions you schedule or join show up here.')]));
}

function defaultTimes(form) {
  const start = new Date();
  start.setHours(start.getHours() + 1, 0, 0, 0);
  const end = new Date(start.getTime() + 60 * 60 * 1000);
  form.elements.starts_at.value = localInputValue(start);
  form.elements.ends_at.value = localInputValue(end);
  form.elements.starts_at.min = localInputValue(new Date());
}

export async function renderRooms() {
  const root = mount('tpl-rooms');
  const form = root.querySelector('#session-form');
  const upcomingList = root.querySelector('#upcoming-list');
  const mineList = root.querySelector('#mine-list');
  const { starts_at: startInput, ends_at: endInput } = form.elements;
  defaultTimes(form);
  // Moving the start keeps the session's length.
  let length = 60 * 60 * 1000;
  endInput.addEventListener('change', () => {
    const ms = Date.parse(endInput.value) - Date.parse(startInput.value);
    if (ms > 0) length = ms;
  });
  startInput.addEventListener('change', () => {
    const start = Date.parse(startInput.value);
    if (!Number.isNaN(start)) endInput.value = localInputValue(new Date(start + length));
  });
  api('GET', '/api/config/subjects')
    .then((subjects) => root.querySelector('#subject-options').replaceChildren(...subjects.map((s) => new Option(s))))
    .catch(() => {}); // suggestions only
  onSubmit(form, async (data) => {
    const text = (k) => String(data.get(k) || '').trim();
    const missing = [];
    const instant = (field, what) => {
      const date = new Date(text(field));
      if (Number.isNaN(date.getTime())) {
        missing.push({ field, message: `Choose ${what}.` });
        return null;
      }
      return date.toISOString();
    };
    const body = {
      title: text('title'),
      subject: text('subject'),
      description: text('description'),
      starts_at: instant('starts_at', 'a start date and time'),
      ends_at: instant('ends_at', 'an end date and time'),
      capacity: Number.parseInt(text('capacity'), 10) || 0,
    };
    if (missing.length) throw new ApiError({ status: 422, detail: 'Please check the highlighted fields.', errors: missing });
    const session = await api('POST', '/api/study-sessions', body);
    form.reset();
    clearProblem(form);
    defaultTimes(form);
    length = 60 * 60 * 1000;
    toast(`Scheduled “${session.title}”`);
    await drawSessions(upcomingList, mineList);
  });
  await drawSessions(upcomingList, mineList);
}
