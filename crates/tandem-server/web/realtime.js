// The realtime channel socket: the Phoenix protocol (vsn 1.0.0, JSON frames)
// Tandem's realtime server speaks, one channel per socket, rejoining with
// backoff when the connection drops.

const HEARTBEAT_MS = 25_000;

/**
 * One socket joined to one channel, rejoining with backoff when it drops.
 * `on` gets: open(), joined(), refused(reason), dropped(), presenceState(state),
 * presenceDiff(diff), broadcast(event, payload, sender). `sender` is the user id the
 * server stamped on a member's broadcast (`meta.sender`, which no client can set);
 * it is null for the server's own broadcasts.
 */
export function channelSocket(topic, config, on) {
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
