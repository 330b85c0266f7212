// My profile: name, photo, subjects, level, style, goals and free time.
import { api, ApiError } from '../api.js';
import { imageUrl } from '../images.js';
import { clearProblem, currentUser, mount, onSubmit, setCurrentUser, showError, toast } from '../shell.js';

function addWindow(list, w = { day: 'mon', start: '18:00', end: '20:00' }) {
  const row = document.getElementById('tpl-window').content.firstElementChild.cloneNode(true);
  row.querySelector('[name=day]').value = w.day;
  row.querySelector('[name=start]').value = w.start;
  row.querySelector('[name=end]').value = w.end === '24:00' ? '23:59' : w.end;
  row.querySelector('.remove').addEventListener('click', () => row.remove());
  list.append(row);
}

function fillProfile(root) {
  const me = currentUser();
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

export async function renderProfile() {
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
      setCurrentUser(await api('GET', '/api/users/me'));
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
    setCurrentUser(await api('PATCH', '/api/users/me', {
      display_name: text('display_name'),
      timezone: text('timezone') || 'UTC',
      subjects: text('subjects').split(',').map((s) => s.trim()).filter(Boolean),
      level: text('level') || null,
      study_style: text('study_style') || null,
      avatar_url: text('avatar_url') || null,
      goals: text('goals'),
      bio: text('bio'),
      availability,
    }));
    clearProblem(form);
    fillProfile(root);
    toast('Profile saved');
  });
}
