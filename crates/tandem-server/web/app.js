// Tandem web app: a tiny hash router over the pages in pages/, each drawn
// from a <template> of index.html (shell.js mounts them).
import { pageView } from './analytics.js';
import { api } from './api.js';
import { renderAchievements } from './pages/achievements.js';
import { renderLogin, renderSignup } from './pages/auth.js';
import { renderCoach } from './pages/coach.js';
import { renderDevices } from './pages/devices.js';
import { renderPartners } from './pages/partners.js';
import { renderProfile } from './pages/profile.js';
import { renderQueues } from './pages/queues.js';
import { renderRoom } from './pages/room.js';
import { renderRooms } from './pages/rooms.js';
import {
  currentUser, go, leave, loadCurrentUser, setCurrentUser, showError,
} from './shell.js';

const nav = document.getElementById('nav');

const routes = {
  login: { page: renderLogin, auth: false },
  signup: { page: renderSignup, auth: false },
  profile: { page: renderProfile, auth: true },
  rooms: { page: renderRooms, auth: true },
  room: { page: renderRoom, auth: true, nav: 'rooms' },
  achievements: { page: renderAchievements, auth: true },
  partners: { page: renderPartners, auth: true },
  coach: { page: renderCoach, auth: true },
  queues: { page: renderQueues, auth: true },
  devices: { page: renderDevices, auth: true },
};

async function render() {
  leave();
  const [name = '', ...params] = location.hash.replace(/^#\/?/, '').split('/');
  const route = routes[name || 'profile'] || routes.profile;
  if (currentUser() === null) await loadCurrentUser().catch(showError);
  const me = currentUser();
  if (route.auth && !me) return go('login');
  if (!route.auth && me) return go('profile');
  nav.hidden = !me;
  document.getElementById('admin-link').hidden = !me?.admin;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.route === (route.nav || name));
  pageView(`/${name || 'profile'}`);
  await route.page(...params.map(decodeURIComponent)).catch(showError);
}

document.getElementById('logout').addEventListener('click', async () => {
  await api('POST', '/api/auth/logout').catch(showError);
  setCurrentUser(null);
  go('login');
});

window.addEventListener('hashchange', render);
render();
