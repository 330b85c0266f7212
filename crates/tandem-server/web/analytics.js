// Page views for Tandem's analytics: batched, sent every few seconds and
// when the page is hidden (fetch keepalive survives the tab closing).
// The visitor id is random, kept in this browser only.

const ENDPOINT = '/api/analytics/events';
const FLUSH_MS = 5000;
const MAX_BATCH = 50;
let queue = [];
let timer = null;

function visitorId() {
  let id = localStorage.getItem('tandemVisitor');
  if (!/^[0-9a-f-]{36}$/.test(id || '')) {
    id = crypto.randomUUID();
    localStorage.setItem('tandemVisitor', id);
  }
  return id;
}

function flush() {
  clearTimeout(timer);
  timer = null;
  while (queue.length) {
    const events = queue.splice(0, MAX_BATCH);
    fetch(ENDPOINT, {
      method: 'POST',
      credentials: 'same-origin',
      keepalive: true,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ visitorId: visitorId(), events }),
    }).catch(() => {}); // analytics never get in the user's way
  }
}

function enqueue(event) {
  queue.push(event);
  if (queue.length >= MAX_BATCH) flush();
  else timer ??= setTimeout(flush, FLUSH_MS);
}

/** Records that the page at `path` (a hash route like `/rooms`) was shown. */
export function pageView(path) {
  enqueue({ type: 'pageView', path, referrer: document.referrer || undefined });
}

/** Records something the visitor did (`kind`: a-z 0-9 . _ : -). */
export function activity(kind, detail) {
  enqueue({ type: 'activity', kind, detail });
}

addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') flush();
});
addEventListener('pagehide', flush);
