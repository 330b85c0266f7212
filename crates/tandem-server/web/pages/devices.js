// My devices: where I am logged in, and logging them out.
import { api } from '../api.js';
import { mount, showError, toast } from '../shell.js';

function describeAgent(ua) {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Chrom/.test(ua) ? 'Chrome' : /Firefox/.test(ua) ? 'Firefox'
    : /Safari/.test(ua) ? 'Safari' : ua.split(' ')[0];
  const os = /Windows/.test(ua) ? 'Windows' : /Mac OS/.test(ua) ? 'macOS' : /Android/.test(ua) ? 'Android'
    : /iPhone|iPad/.test(ua) ? 'iOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

export async function renderDevices() {
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
