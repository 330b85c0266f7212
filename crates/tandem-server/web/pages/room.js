// One study room: chat history, live messages, who's online and who's typing,
// over the realtime channel `realtime:room:{id}`; the video call (call.js)
// signals over the same channel.
import { api, ApiError } from '../api.js';
import { createCall } from '../call.js';
import { channelSocket } from '../realtime.js';
import { badge, currentUser, emptyItem, initials, mount, onLeave, showError, toast } from '../shell.js';
import { describeChatTime, describeTimes, roomState } from '../times.js';

const TYPING_SEND_MS = 3_000; // the server drops typing broadcasts closer together than this
const TYPING_SHOW_MS = 4_000;

function typingText(names) {
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

export async function renderRoom(id) {
  const me = currentUser();
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
  const state = roomState(detail);
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
  onLeave(() => {
    call.close(); // says goodbye on the socket, so before closing it
    socket.close();
    clearTimeout(typingTimer);
  });

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
