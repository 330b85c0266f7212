// Tandem web app shell: a tiny hash router over <template>s.
import { pageView } from './analytics.js';
import { api, ApiError } from './api.js';
import { createCall } from './call.js';
import { imageUrl } from './images.js';
import { renderCoach, renderPartners, renderQueues } from './jobs.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
let me = null;
/** Undoes what the current page set up (sockets, timers) when the route changes. */
let leavePage = null;

const routes = {
  login: { page: renderLogin, auth: false },
  signup: { page: renderSignup, auth: false },
  profile: { page: renderProfile, auth: true },
  rooms: { page: renderRooms, auth: true },
  room: { page: renderRoom, auth: true, nav: 'rooms' },
  achievements: { page: renderAchievements, auth: true },
  partners: { page: () => renderPartners(ui), auth: true },
  coach: { page: () => renderCoach(ui), auth: true },
  queues: { page: () => renderQueues(ui), auth: true },
  devices: { page: renderDevices, auth: true },
};

function mount(id) {
  view.replaceChildren(document.getElementById(id).content.cloneNode(true));
  return view;
}

function go(route) {
  if (location.hash !== `#/${route}`) location.hash = `#/${route}`;
  else render();
}

async function loadMe() {
  try {
    me = await api('GET', '/api/users/me');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
    me = null;
  }
  return me;
}

async function render() {
  leavePage?.();
  leavePage = null;
  const [name = '', ...params] = location.hash.replace(/^#\/?/, '').split('/');
  const route = routes[name || 'profile'] || routes.profile;
  if (me === null) await loadMe().catch(showError);
  if (route.auth && !me) return go('login');
  if (!route.auth && me) return go('profile');
  nav.hidden = !me;
  document.getElementById('admin-link').hidden = !me?.admin;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.route === (route.nav || name));
  pageView(`/${name || 'profile'}`);
  await route.page(...params.map(decodeURIComponent)).catch(showError);
}

function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 2500);
}

function showError(err) {
  toast(err.message || String(err));
}

/** Shows a problem on a form: the detail, and each field's message beside its input. */
function showProblem(form, err) {
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const box = form.querySelector('.form-error');
  const errors = err.errors || [];
  box.hidden = false;
  // The API's summary of field errors points at its `errors` list; say it for people instead.
  box.textContent = errors.length && /`errors`/.test(err.message) ? 'Please check the highlighted fields.' : err.message;
  for (const { field, message } of errors) {
    const input = form.elements[field];
    const target = input instanceof Element ? input : form.querySelector('#windows');
    if (!target) continue;
    target.setAttribute('aria-invalid', 'true');
    const note = document.createElement('small');
    note.className = 'field-error';
    note.textContent = message;
    target.insertAdjacentElement('afterend', note);
  }
}

function onSubmit(form, handler) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await handler(new FormData(form));
    } catch (err) {
      showProblem(form, err);
    } finally {
      button.disabled = false;
    }
  });
}

async function renderLogin() {
  const form = mount('tpl-login').querySelector('form');
  onSubmit(form, async (data) => {
    me = await api('POST', '/api/auth/login', { email: data.get('email'), password: data.get('password') });
    go('profile');
  });
}

async function renderSignup() {
  const form = mount('tpl-signup').querySelector('form');
  onSubmit(form, async (data) => {
    me = await api('POST', '/api/auth/register', {
      email: data.get('email'), password: data.get('password'), display_name: data.get('display_name'),
    });
    toast(`Welcome to Tandem, ${me.display_name}!`);
    go('profile');
  });
}

function addWindow(list, w = { day: 'mon', start: '18:00', end: '20:00' }) {
  const row = document.getElementById('tpl-window').content.firstElementChild.cloneNode(true);
  row.querySelector('[name=day]').value = w.day;
  row.querySelector('[name=start]').value = w.start;
  row.querySelector('[name=end]').value = w.end === '24:00' ? '23:59' : w.end;
  row.querySelector('.remove').addEventListener('click', () => row.remove());
  list.append(row);
}

function fillProfile(root) {
  const p = me.profile;
  root.querySelector('#hello').textContent = `Hi, ${me.display_name}`;
  root.querySelector('#member-since').textContent =
    `${me.email} · member since ${new Date(me.created_at).toLocaleDateString()}`;
  const avatar = root.querySelector('#avatar');
  avatar.replaceChildren();
  if (p.avatar_url) {
    const img = document.createElement('img');
    img.src = imageUrl(p.avatar_url, { width: 64 });
    img.alt = '';
    avatar.append(img);
  } else {
    avatar.textContent = me.display_name.trim().charAt(0).toUpperCase();
  }
  const f = root.querySelector('#profile-form').elements;
  f.display_name.value = me.display_name;
  f.timezone.value = p.timezone;
  f.subjects.value = p.subjects.join(', ');
  f.level.value = p.level || '';
  f.study_style.value = p.study_style || '';
  f.avatar_url.value = p.avatar_url || '';
  f.goals.value = p.goals;
  f.bio.value = p.bio;
  const list = root.querySelector('#windows');
  list.replaceChildren();
  for (const w of p.availability) addWindow(list, w);
}

async function renderProfile() {
  const root = mount('tpl-profile');
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : [];
  root.querySelector('#timezones').replaceChildren(...zones.map((z) => new Option(z)));
  fillProfile(root);
  const list = root.querySelector('#windows');
  root.querySelector('#add-window').addEventListener('click', () => addWindow(list));
  const form = root.querySelector('#profile-form');
  root.querySelector('#avatar-file').addEventListener('change', async (e) => {
    const file = e.target.files?.[0];
    if (!file) return;
    try {
      const res = await fetch('/api/users/me/avatar', {
        method: 'PUT', credentials: 'same-origin', headers: { 'content-type': file.type || 'application/octet-stream' }, body: file,
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new ApiError({ status: res.status, ...body });
      me = await api('GET', '/api/users/me');
      fillProfile(root);
      toast('Photo updated');
    } catch (err) {
      showError(err);
    } finally {
      e.target.value = '';
    }
  });
  onSubmit(form, async (data) => {
    const availability = [...list.querySelectorAll('.window-row')].map((row) => ({
      day: row.querySelector('[name=day]').value,
      start: row.querySelector('[name=start]').value,
      end: row.querySelector('[name=end]').value,
    }));
    const text = (k) => String(data.get(k) || '').trim();
    me = await api('PATCH', '/api/users/me', {
      display_name: text('display_name'),
      timezone: text('timezone') || 'UTC',
      subjects: text('subjects').split(',').map((s) => s.trim()).filter(Boolean),
      level: text('level') || null,
      study_style: text('study_style') || null,
      avatar_url: text('avatar_url') || null,
      goals: text('goals'),
      bio: text('bio'),
      availability,
    });
    form.querySelector('.form-error').hidden = true;
    for (const el of form.querySelectorAll('.field-error')) el.remove();
    fillProfile(root);
    toast('Profile saved');
  });
}

function describeAgent(ua) {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Chrom/.test(ua) ? 'Chrome' : /Firefox/.test(ua) ? 'Firefox'
    : /Safari/.test(ua) ? 'Safari' : ua.split(' ')[0];
  const os = /Windows/.test(ua) ? 'Windows' : /Mac OS/.test(ua) ? 'macOS' : /Android/.test(ua) ? 'Android'
    : /iPhone|iPad/.test(ua) ? 'iOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

async function renderDevices() {
  const root = mount('tpl-devices');
  const list = root.querySelector('#device-list');
  const sessions = await api('GET', '/api/auth/sessions');
  list.replaceChildren(...sessions.map((s) => {
    const li = document.createElement('li');
    li.className = 'device';
    const info = document.createElement('div');
    const title = document.createElement('strong');
    title.textContent = describeAgent(s.user_agent);
    const meta = document.createElement('p');
    meta.className = 'muted';
    meta.textContent = `${s.ip || 'unknown address'} · active ${new Date(s.last_seen_at).toLocaleString()}`;
    info.append(title, meta);
    li.append(info);
    if (s.current) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'This device';
      li.append(badge);
    } else {
      const button = document.createElement('button');
      button.className = 'secondary';
      button.textContent = 'Log out';
      button.addEventListener('click', async () => {
        await api('DELETE', `/api/auth/sessions/${s.id}`).catch(showError);
        renderDevices();
      });
      li.append(button);
    }
    return li;
  }));
  root.querySelector('#revoke-others').addEventListener('click', async () => {
    const { revoked } = await api('DELETE', '/api/auth/sessions');
    toast(revoked === 1 ? 'Logged out 1 device' : `Logged out ${revoked} devices`);
    renderDevices();
  });
}

// Study rooms: schedule, browse, join, leave, cancel.

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const monthFormat = new Intl.DateTimeFormat(undefined, { month: 'short' });

/** "Thu, 26 Nov · 14:00 – 15:30" in the browser's time zone. */
function describeTimes(s) {
  const start = new Date(s.starts_at);
  const end = new Date(s.ends_at);
  const until = start.toDateString() === end.toDateString()
    ? timeFormat.format(end) : `${dayFormat.format(end)}, ${timeFormat.format(end)}`;
  return `${dayFormat.format(start)} · ${timeFormat.format(start)} – ${until}`;
}

/** The value a `datetime-local` input needs to show `date` in local time. */
function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
    + `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** cancelled, ended, live or upcoming. */
function sessionState(s, now = Date.now()) {
  if (s.status === 'cancelled') return 'cancelled';
  if (Date.parse(s.ends_at) <= now) return 'ended';
  if (Date.parse(s.starts_at) <= now) return 'live';
  return 'upcoming';
}

function badge(text, kind = '') {
  const el = document.createElement('span');
  el.className = `badge ${kind}`.trim();
  el.textContent = text;
  return el;
}

function button(text, className, onClick) {
  const el = document.createElement('button');
  el.type = 'button';
  el.className = className;
  el.textContent = text;
  el.addEventListener('click', onClick);
  return el;
}

function emptyItem(text) {
  const li = document.createElement('li');
  li.className = 'empty';
  li.textContent = text;
  return li;
}

function initials(name) {
  return name.trim().charAt(0).toUpperCase() || '?';
}

async function loadMembers(id, list) {
  const detail = await api('GET', `/api/study-sessions/${id}`);
  list.replaceChildren(...detail.members.map((m) => {
    const li = document.createElement('li');
    const dot = document.createElement('span');
    dot.className = 'mini-avatar';
    dot.textContent = initials(m.display_name);
    const name = document.createElement('span');
    name.textContent = m.user_id === me.id ? `${m.display_name} (you)` : m.display_name;
    li.append(dot, name);
    if (m.role === 'owner') li.append(badge('Host', 'subtle'));
    return li;
  }));
}

/** One session card; `actions` go on its right-hand side. */
function sessionCard(s, { actions = [], labels = [] } = {}) {
  const li = document.getElementById('tpl-session').content.firstElementChild.cloneNode(true);
  const start = new Date(s.starts_at);
  const state = sessionState(s);
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
  if (s.owner_id === me.id) return [badge('Your session', 'brand')];
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
  const state = sessionState(s);
  if (state === 'cancelled') return [];
  if (state === 'ended') return [openRoomLink(s)];
  return [openRoomLink(s), ...mineOnlyActions(s, refresh)];
}

function mineOnlyActions(s, refresh) {
  if (s.owner_id === me.id) {
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
      labels: s.owner_id === me.id ? [badge('Hosting', 'brand')] : [],
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

function clearProblem(form) {
  form.querySelector('.form-error').hidden = true;
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

async function renderRooms() {
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

// Study room: chat history, live messages, who's online and who's typing,
// over the Phoenix-protocol realtime socket (vsn 1.0.0, JSON frames); the video call
// (call.js) signals over the same channel.

const HEARTBEAT_MS = 25_000;
const TYPING_SEND_MS = 3_000; // the server drops typing broadcasts closer together than this
const TYPING_SHOW_MS = 4_000;

/**
 * One socket joined to one channel, rejoining with backoff when it drops.
 * `on` gets: open(), joined(), refused(reason), dropped(), presenceState(state),
 * presenceDiff(diff), broadcast(event, payload, sender). `sender` is the user id the
 * server stamped on a member's broadcast (`meta.sender`, which no client can set);
 * it is null for the server's own broadcasts.
 */
function channelSocket(topic, config, on) {
  let ws = null;
  let ref = 0;
  let joinRef = null;
  let heartbeat = null;
  let retry = null;
  let attempts = 0;
  let stopped = false;

  const frame = (t, event, payload, jr) => JSON.stringify({ topic: t, event, payload, ref: String(++ref), join_ref: jr });

  function send(event, payload) {
    if (!ws || ws.readyState !== WebSocket.OPEN || joinRef === null) return false;
    ws.send(frame(topic, event, payload, joinRef));
    return true;
  }

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${proto}//${location.host}/realtime/v1/websocket?vsn=1.0.0`);
    ws = socket;
    joinRef = null;
    socket.addEventListener('open', () => {
      const jr = String(++ref);
      socket.send(JSON.stringify({ topic, event: 'phx_join', payload: { config }, ref: jr, join_ref: jr }));
      joinRef = jr;
      heartbeat = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send(frame('phoenix', 'heartbeat', {}, null));
      }, HEARTBEAT_MS);
    });
    socket.addEventListener('message', (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (m.topic !== topic) return;
      switch (m.event) {
        case 'phx_reply':
          if (m.ref !== joinRef) return;
          if (m.payload?.status === 'ok') {
            attempts = 0;
            on.joined();
          } else {
            stopped = true; // refused: retrying will not help
            on.refused(m.payload?.response?.reason || 'The room refused the connection.');
            socket.close();
          }
          break;
        case 'presence_state': on.presenceState(m.payload || {}); break;
        case 'presence_diff': on.presenceDiff(m.payload || {}); break;
        case 'broadcast': {
          const sender = m.payload?.meta?.sender;
          on.broadcast(m.payload?.event, m.payload?.payload, typeof sender === 'string' ? sender : null);
          break;
        }
        case 'phx_error':
        case 'phx_close':
          socket.close(); // rejoin on a fresh connection
          break;
        default:
      }
    });
    socket.addEventListener('close', () => {
      clearInterval(heartbeat);
      if (ws !== socket || stopped) return;
      on.dropped();
      const delay = Math.min(30_000, 1000 * 2 ** attempts) * (0.75 + Math.random() * 0.5);
      attempts += 1;
      retry = setTimeout(connect, delay);
    });
  }

  connect();
  return {
    send,
    close() {
      stopped = true;
      clearTimeout(retry);
      clearInterval(heartbeat);
      ws?.close();
    },
  };
}

const chatTime = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const chatDay = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });

function describeChatTime(iso) {
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? chatTime.format(d) : `${chatDay.format(d)}, ${chatTime.format(d)}`;
}

function typingText(names) {
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

async function renderRoom(id) {
  const root = mount('tpl-room');
  const notice = root.querySelector('#room-notice');
  const layout = root.querySelector('#room-layout');
  const list = root.querySelector('#messages');
  const scroller = root.querySelector('#messages-scroll');
  const older = root.querySelector('#load-older');
  const typingEl = root.querySelector('#typing');
  const onlineList = root.querySelector('#online-list');
  const onlineEmpty = root.querySelector('#online-empty');
  const connection = root.querySelector('#connection');
  const form = root.querySelector('#chat-form');
  const input = root.querySelector('#chat-input');
  const formError = root.querySelector('.chat .form-error');
  const fail = (text) => {
    notice.textContent = text;
    notice.hidden = false;
  };

  let detail;
  try {
    detail = await api('GET', `/api/study-sessions/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 400 || err.status === 422)) {
      return fail("We couldn't find this study session. It may have been removed.");
    }
    throw err;
  }
  if (!list.isConnected) return;
  root.querySelector('#room-title').textContent = detail.title;
  const state = sessionState(detail);
  root.querySelector('#room-time').textContent = `${detail.subject} · ${describeTimes(detail)}`;
  const stateBadge = { cancelled: badge('Cancelled', 'muted-badge'), ended: badge('Ended', 'muted-badge'),
    live: badge('Live now', 'live'), upcoming: badge('Upcoming') }[state];
  root.querySelector('#room-state').replaceWith(stateBadge);
  const names = new Map(detail.members.map((m) => [m.user_id, m.display_name]));
  if (!names.has(me.id)) {
    return fail('Only members can enter this room. Join the session from the study rooms page first.');
  }
  layout.hidden = false;

  // Chat: messages by id, drawn oldest first.
  const messages = new Map();
  let nextBefore = null;
  const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
  function drawMessages(stick) {
    const sorted = [...messages.values()].sort((a, b) =>
      Date.parse(a.created_at) - Date.parse(b.created_at) || (a.id < b.id ? -1 : 1));
    list.replaceChildren(...(sorted.length ? sorted.map((m) => {
      const li = document.createElement('li');
      li.className = m.user_id === me.id ? 'message mine' : 'message';
      li.dataset.id = m.id;
      const head = document.createElement('div');
      head.className = 'message-head';
      const who = document.createElement('strong');
      who.textContent = m.user_id === me.id ? 'You' : (m.display_name || names.get(m.user_id) || 'Someone');
      const when = document.createElement('time');
      when.dateTime = m.created_at;
      when.textContent = describeChatTime(m.created_at);
      head.append(who, when);
      const body = document.createElement('p');
      body.className = 'message-body';
      body.textContent = m.body;
      li.append(head, body);
      return li;
    }) : [emptyItem('No messages yet. Say hello!')]));
    older.hidden = !nextBefore;
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }
  function addMessages(batch) {
    const stick = nearBottom();
    for (const m of batch) messages.set(m.id, m);
    drawMessages(stick);
  }
  async function loadLatest() {
    const page = await api('GET', `/api/study-sessions/${id}/messages?limit=50`);
    if (messages.size === 0) nextBefore = page.next_before;
    addMessages(page.messages);
  }
  older.addEventListener('click', async () => {
    older.disabled = true;
    try {
      const page = await api('GET', `/api/study-sessions/${id}/messages?limit=50&before=${nextBefore}`);
      nextBefore = page.next_before;
      const height = scroller.scrollHeight;
      addMessages(page.messages);
      scroller.scrollTop += scroller.scrollHeight - height; // keep the view where it was
    } catch (err) {
      showError(err);
    } finally {
      older.disabled = false;
    }
  });

  // Typing: who, until when.
  const typers = new Map();
  let typingTimer = null;
  function drawTyping() {
    const now = Date.now();
    for (const [k, t] of typers) if (t.until <= now) typers.delete(k);
    typingEl.textContent = typers.size ? typingText([...typers.values()].map((t) => t.name)) : '';
    clearTimeout(typingTimer);
    if (typers.size) typingTimer = setTimeout(drawTyping, Math.min(...[...typers.values()].map((t) => t.until)) - now + 20);
  }

  // Presence: key (user id) → metas.
  let presence = new Map();
  function drawOnline() {
    const keys = [...presence.keys()].sort((a, b) => {
      if (a === me.id) return -1;
      if (b === me.id) return 1;
      return presenceName(a).localeCompare(presenceName(b));
    });
    onlineList.replaceChildren(...keys.map((key) => {
      const li = document.createElement('li');
      const dot = document.createElement('span');
      dot.className = 'mini-avatar';
      const name = presenceName(key);
      dot.textContent = initials(name);
      const label = document.createElement('span');
      label.textContent = key === me.id ? `${name} (you)` : name;
      const status = document.createElement('span');
      status.className = 'online-dot';
      status.setAttribute('aria-hidden', 'true');
      li.append(dot, label, status);
      return li;
    }));
    onlineEmpty.hidden = keys.some((k) => k !== me.id);
  }
  function presenceName(key) {
    const metas = presence.get(key) || [];
    // The key is the user id (the server sets it); a meta's name is only a fallback.
    return names.get(key) || String(metas.find((m) => m.name)?.name || 'Someone');
  }

  let lastTypingSent = 0;
  let call = null;
  const socket = channelSocket(`realtime:room:${id}`,
    { broadcast: { self: false }, presence: { key: me.id } }, {
      joined() {
        connection.textContent = 'Live';
        connection.className = 'connection ok';
        socket.send('presence', { type: 'presence', event: 'track', payload: { name: me.display_name } });
        loadLatest().catch(showError); // catch up on anything missed while away
        call?.rejoined();
      },
      refused(reason) {
        connection.textContent = 'Offline';
        connection.className = 'connection muted';
        fail(/unauthori[sz]ed/i.test(reason)
          ? "You can't join this room's live chat. Only members of the session can."
          : `Live updates are unavailable: ${reason}`);
      },
      dropped() {
        connection.textContent = 'Reconnecting…';
        connection.className = 'connection warn';
        presence = new Map();
        drawOnline();
      },
      presenceState(state) {
        presence = new Map(Object.entries(state).map(([k, v]) => [k, [...(v.metas || [])]]));
        drawOnline();
      },
      presenceDiff({ joins = {}, leaves = {} }) {
        for (const [key, { metas = [] }] of Object.entries(leaves)) {
          const gone = new Set(metas.map((m) => m.phx_ref));
          const left = (presence.get(key) || []).filter((m) => !gone.has(m.phx_ref));
          if (left.length) presence.set(key, left);
          else {
            presence.delete(key);
            call?.userLeft(key);
          }
        }
        for (const [key, { metas = [] }] of Object.entries(joins)) {
          const current = presence.get(key) || [];
          const refs = new Set(current.map((m) => m.phx_ref));
          presence.set(key, [...current, ...metas.filter((m) => !refs.has(m.phx_ref))]);
        }
        drawOnline();
      },
      broadcast(event, payload, sender) {
        if (!payload || typeof payload !== 'object') return;
        if (event === 'messages' && Array.isArray(payload)) {
          // Stored messages come from the server alone (it refuses this event from members).
          if (sender !== null) return;
          // The server batches a room's new messages (up to 100 ms).
          const fresh = payload.filter((m) => m && m.id);
          addMessages(fresh);
          for (const m of fresh) typers.delete(m.user_id);
          drawTyping();
        } else if (event === 'typing' && sender && sender !== me.id) {
          // Who is typing is who sent it, whatever the payload claims.
          const name = names.get(sender) || String(payload.name || 'Someone');
          typers.set(sender, { name, until: Date.now() + TYPING_SHOW_MS });
          drawTyping();
        } else if (event === 'rtc' && sender) {
          call?.signal({ ...payload, user: sender });
        }
      },
    });
  call = createCall({ root, me, names, send: socket.send, toast });
  leavePage = () => {
    call.close(); // says goodbye on the socket, so before closing it
    socket.close();
    clearTimeout(typingTimer);
  };

  input.addEventListener('input', () => {
    const now = Date.now();
    if (!input.value.trim() || now - lastTypingSent < TYPING_SEND_MS) return;
    if (socket.send('broadcast', { type: 'broadcast', event: 'typing', payload: { user_id: me.id, name: me.display_name } })) {
      lastTypingSent = now;
    }
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    const send = form.querySelector('button[type=submit]');
    send.disabled = true;
    try {
      const message = await api('POST', `/api/study-sessions/${id}/messages`, { body });
      input.value = '';
      formError.hidden = true;
      messages.set(message.id, message);
      drawMessages(true);
    } catch (err) {
      formError.textContent = err.errors?.[0]?.message || err.message;
      formError.hidden = false;
    } finally {
      send.disabled = false;
      input.focus();
    }
  });

  drawOnline();
  await loadLatest();
}

// Achievements: the catalog, earned ones first.

async function renderAchievements() {
  const root = mount('tpl-achievements');
  const list = root.querySelector('#achievement-list');
  const all = await api('GET', '/api/achievements');
  if (!list.isConnected) return;
  const earned = all.filter((a) => a.earned_at).sort((a, b) => Date.parse(a.earned_at) - Date.parse(b.earned_at));
  const locked = all.filter((a) => !a.earned_at);
  root.querySelector('#achievement-summary').textContent = earned.length
    ? `${earned.length} of ${all.length} earned. Keep studying together to unlock the rest.`
    : `0 of ${all.length} earned. Join or host a study session to earn your first badge.`;
  root.querySelector('#achievement-meter').style.width = `${all.length ? (100 * earned.length) / all.length : 0}%`;
  const dateFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
  list.replaceChildren(...[...earned, ...locked].map((a) => {
    const li = document.createElement('li');
    li.className = a.earned_at ? 'achievement earned' : 'achievement locked';
    const icon = document.createElement('div');
    icon.className = 'achievement-icon';
    icon.setAttribute('aria-hidden', 'true');
    icon.textContent = a.icon;
    const name = document.createElement('h3');
    name.textContent = a.name;
    const description = document.createElement('p');
    description.className = 'muted';
    description.textContent = a.description;
    const status = document.createElement('p');
    status.className = 'achievement-status';
    status.textContent = a.earned_at ? `Earned ${dateFormat.format(new Date(a.earned_at))}` : 'Not earned yet';
    li.append(icon, name, description, status);
    return li;
  }));
}

document.getElementById('logout').addEventListener('click', async () => {
  await api('POST', '/api/auth/logout').catch(showError);
  me = null;
  go('login');
});

/** What the job-backed pages (jobs.js) use from the shell. */
const ui = {
  mount,
  toast,
  onSubmit,
  channelSocket,
  me: () => me,
  onLeave(fn) { leavePage = fn; },
};

window.addEventListener('hashchange', render);
render();
