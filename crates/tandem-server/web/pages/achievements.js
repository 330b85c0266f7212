// Achievements: the catalog, earned ones first.
import { api } from '../api.js';
import { mount } from '../shell.js';

export async function renderAchievements() {
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
