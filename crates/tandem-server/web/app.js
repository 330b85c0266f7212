// Tandem web app shell: a tiny hash router over <template>s.
import { api, ApiError } from './api.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
let me = null;

const routes = {
  login: { page: renderLogin, auth: false },
  signup: { page: renderSignup, auth: false },
  profile: { page: renderProfile, auth: true },
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
  const name = location.hash.replace(/^#\/?/, '') || 'profile';
  const route = routes[name] || routes.profile;
  if (me === null) await loadMe().catch(showError);
  if (route.auth && !me) return go('login');
  if (!route.auth && me) return go('profile');
  nav.hidden = !me;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.route === name);
  await route.page().catch(showError);
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
  box.hidden = false;
  box.textContent = err.message;
  for (const { field, message } of err.errors || []) {
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
    img.src = p.avatar_url;
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

document.getElementById('logout').addEventListener('click', async () => {
  await api('POST', '/api/auth/logout').catch(showError);
  me = null;
  go('login');
});

window.addEventListener('hashchange', render);
render();
