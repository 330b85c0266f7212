// Video calls in study rooms: a mesh of RTCPeerConnections among the room's
// members who joined the call, signalled over the room's realtime channel
// (which only members of the session may join).
//
// Signalling is one broadcast event, `rtc`, with a payload
//   { from: <call id>, user: <user id>, name, to?: <call id>, kind, ... }
// where `user` is only the sender's claim: receivers use the sender the server
// stamped on the broadcast (`meta.sender`) instead, and ignore messages for a call
// id another member announced. The call id is fresh for every time someone joins the call (so two
// tabs of one student are two participants) and `kind` is one of
//   hello       to everyone: "I'm in the call"; everyone in it connects to me
//   offer       { sdp }  }  the "perfect negotiation" pattern: either side may
//   answer      { sdp }  }  offer; on a collision the polite one gives way
//   candidates  { candidates: [...] }  ICE candidates, batched
//   bye         to everyone: "I left the call"
//
// Relay only: with `localStorage.tandemRelayOnly = '1'` every connection uses
// iceTransportPolicy 'relay', so media flows only through Tandem's TURN server
// (the end-to-end test uses it; it also keeps a student's addresses from
// their peers). The default is 'all'.
import { api } from './api.js';

/** ICE candidates found within this long go out in one message. */
const CANDIDATE_BATCH_MS = 50;
/** Candidates kept from a peer before its offer or answer is applied. */
const MAX_EARLY_CANDIDATES = 64;
/** Signalling steps kept for `window.tandemCall.trace()`. */
const TRACE_LENGTH = 200;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A video tile: the picture and whose it is. */
function tile(name, { local = false } = {}) {
  const li = el('li', local ? 'tile local' : 'tile');
  const video = el('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = local; // never play yourself back
  li.append(video, el('span', 'tile-name', name));
  li.setAttribute('aria-label', name);
  return { li, video };
}

/**
 * The call in the study room under `root`. `send(event, payload)` sends a
 * frame on the room's channel; `names` maps member ids to display names.
 * Returns the hooks the room page calls: `signal(payload)` for `rtc`
 * broadcasts, `userLeft(id)` when a member's presence is gone,
 * `rejoined()` when the channel is (re)joined, and `close()` when leaving.
 */
export function createCall({ root, me, names, send, toast }) {
  const grid = root.querySelector('#video-grid');
  const status = root.querySelector('#call-status');
  const joinButton = root.querySelector('#call-join');
  const controls = root.querySelector('#call-controls');
  const cameraButton = root.querySelector('#call-camera');
  const micButton = root.querySelector('#call-mic');
  const leaveButton = root.querySelector('#call-leave');

  let callId = null; // set while in the call
  let local = null;
  let config = null;
  let localTile = null;
  /** call id → { id, user, name, pc, polite, makingOffer, ignoreOffer, queue, early, outbox, flush, tile } */
  const peers = new Map();
  /** The last signalling steps, for debugging a call that does not connect. */
  const steps = [];

  function trace(step) {
    steps.push(`${(performance.now() / 1000).toFixed(3)} ${step}`);
    if (steps.length > TRACE_LENGTH) steps.shift();
  }

  function sendRtc(kind, fields = {}) {
    if (kind !== 'candidates') trace(`> ${kind}${fields.to ? ` to ${peers.get(fields.to)?.name}` : ''}`);
    return send('broadcast', { type: 'broadcast', event: 'rtc',
      payload: { from: callId, user: me.id, name: me.display_name, kind, ...fields } });
  }

  function drawStatus() {
    if (!callId) {
      status.textContent = 'Not in the call';
      return;
    }
    const others = [...peers.values()];
    const connected = others.filter((p) => p.pc.connectionState === 'connected').map((p) => p.name);
    if (!others.length) status.textContent = 'Waiting for others to join the call…';
    else if (connected.length === others.length) status.textContent = `In the call with ${connected.join(', ')}`;
    else status.textContent = `Connecting (${connected.length} of ${others.length})…`;
  }

  function connect({ from, user, name }) {
    const pc = new RTCPeerConnection(config);
    const peer = {
      id: from, user, name, pc,
      // Either order works as long as both sides agree; the call id breaks a tie between two tabs of one student.
      polite: `${me.id}:${callId}` < `${user}:${from}`,
      makingOffer: false, ignoreOffer: false, queue: Promise.resolve(), early: [], outbox: [], flush: null,
      tile: tile(name),
    };
    peers.set(from, peer);
    grid.append(peer.tile.li);
    for (const track of local.getTracks()) pc.addTrack(track, local);
    pc.addEventListener('negotiationneeded', async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        sendRtc('offer', { to: from, sdp: pc.localDescription.sdp });
      } catch (err) {
        console.warn('call: offer failed', err);
      } finally {
        peer.makingOffer = false;
      }
    });
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (!candidate) return;
      if (!peer.outbox.length) trace(`candidates for ${name} (${candidate.type})`);
      peer.outbox.push(candidate.toJSON());
      peer.flush ??= setTimeout(() => {
        peer.flush = null;
        sendRtc('candidates', { to: from, candidates: peer.outbox.splice(0) });
      }, CANDIDATE_BATCH_MS);
    });
    pc.addEventListener('track', ({ track, streams }) => {
      const video = peer.tile.video;
      if (streams[0]) video.srcObject = streams[0];
      else (video.srcObject ??= new MediaStream()).addTrack(track);
    });
    pc.addEventListener('icegatheringstatechange', () => trace(`ICE gathering for ${name}: ${pc.iceGatheringState}`));
    pc.addEventListener('connectionstatechange', () => {
      trace(`connection to ${name} ${pc.connectionState}`);
      peer.tile.li.dataset.state = pc.connectionState;
      if (pc.connectionState === 'failed') pc.restartIce();
      drawStatus();
    });
    drawStatus();
    return peer;
  }

  /**
   * Adds the peer's ICE candidates. A candidate from an offer that was rolled
   * back or ignored in a collision no longer matches (different ICE
   * credentials) and fails harmlessly, so failures are only traced.
   */
  async function addCandidates(peer, candidates) {
    for (const candidate of candidates) {
      try {
        await peer.pc.addIceCandidate(candidate);
      } catch (err) {
        trace(`candidate from ${peer.name} not used: ${err.message}`);
      }
    }
  }

  /** One peer's messages, handled strictly in order. */
  async function handle(peer, m) {
    const { pc } = peer;
    trace(`< ${m.kind} from ${peer.name} (${pc.signalingState})`);
    if (m.kind === 'offer' || m.kind === 'answer') {
      const collision = m.kind === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
      peer.ignoreOffer = !peer.polite && collision;
      if (peer.ignoreOffer) return trace(`offer from ${peer.name} ignored: ours goes first`);
      await pc.setRemoteDescription({ type: m.kind, sdp: String(m.sdp) });
      if (m.kind === 'offer') {
        await pc.setLocalDescription();
        sendRtc('answer', { to: peer.id, sdp: pc.localDescription.sdp });
      }
      // Candidates that came before any description: the peer may keep its
      // ICE credentials across a rolled-back offer, so they can still be good.
      await addCandidates(peer, peer.early.splice(0));
    } else if (m.kind === 'candidates' && Array.isArray(m.candidates)) {
      if (pc.remoteDescription) await addCandidates(peer, m.candidates);
      else peer.early.push(...m.candidates.slice(0, MAX_EARLY_CANDIDATES - peer.early.length));
    }
  }

  function drop(id) {
    const peer = peers.get(id);
    if (!peer) return;
    peers.delete(id);
    clearTimeout(peer.flush);
    peer.pc.close();
    peer.tile.li.remove();
    drawStatus();
  }

  function dropAll() {
    for (const id of [...peers.keys()]) drop(id);
  }

  /** `m.user` is the sender the server stamped (the room page sets it), never the payload's claim. */
  function signal(m) {
    if (!callId) return trace(`< ${m?.kind} before joining the call`);
    if (!m || typeof m !== 'object' || typeof m.from !== 'string' || typeof m.user !== 'string') return;
    if (m.from === callId || (m.to !== undefined && m.to !== callId)) return;
    // A call id belongs to the member who announced it: no one else may speak for it (e.g. a forged bye).
    const known = peers.get(m.from);
    if (known && known.user !== m.user) return;
    const name = names.get(m.user) || String(m.name || 'Someone');
    if (m.kind === 'hello' || m.kind === 'bye') trace(`< ${m.kind} from ${name}`);
    if (m.kind === 'hello') {
      // A known participant saying hello again has lost its connections (it rejoined the channel): start afresh.
      drop(m.from);
      connect({ from: m.from, user: m.user, name });
      return;
    }
    if (m.kind === 'bye') return drop(m.from);
    const peer = peers.get(m.from) || (m.kind === 'offer' ? connect({ from: m.from, user: m.user, name }) : null);
    if (!peer) return;
    peer.queue = peer.queue.then(() => handle(peer, m)).catch((err) => console.warn('call: signalling failed', err));
  }

  /** Camera and microphone; without one of them (none plugged in), whichever there is. */
  async function openMedia() {
    try {
      return await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    } catch (err) {
      if (err.name !== 'NotFoundError') throw err;
      for (const only of [{ audio: true }, { video: true }]) {
        try {
          return await navigator.mediaDevices.getUserMedia(only);
        } catch { /* try the other */ }
      }
      throw err;
    }
  }

  function setToggle(button, on, what) {
    button.setAttribute('aria-pressed', String(on));
    button.title = on ? `Turn your ${what} off` : `Turn your ${what} on`;
  }

  async function join() {
    joinButton.disabled = true;
    status.textContent = 'Starting your camera…';
    try {
      local = await openMedia();
      let iceServers = [];
      try {
        ({ iceServers } = await api('GET', '/api/webrtc/ice-servers'));
      } catch (err) {
        toast(`No relay server for the call: ${err.message}`);
      }
      if (!joinButton.isConnected) return stopLocal(); // left the room meanwhile
      const relayOnly = localStorage.getItem('tandemRelayOnly') === '1';
      config = { iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all' };
    } catch (err) {
      stopLocal();
      joinButton.disabled = false;
      status.textContent = `Your camera or microphone is unavailable (${err.message || err.name}).`;
      return;
    }
    callId = crypto.randomUUID();
    trace(`joined as ${callId} (${config.iceTransportPolicy}, ${config.iceServers.length} ICE servers)`);
    localTile = tile('You', { local: true });
    localTile.video.srcObject = local;
    grid.prepend(localTile.li);
    grid.hidden = false;
    joinButton.hidden = true;
    joinButton.disabled = false;
    controls.hidden = false;
    setToggle(cameraButton, true, 'camera');
    setToggle(micButton, true, 'microphone');
    cameraButton.hidden = !local.getVideoTracks().length;
    micButton.hidden = !local.getAudioTracks().length;
    window.addEventListener('pagehide', leave);
    sendRtc('hello'); // if the channel isn't joined yet, `rejoined` says it
    drawStatus();
  }

  function stopLocal() {
    for (const track of local?.getTracks() || []) track.stop();
    local = null;
  }

  function leave() {
    if (!callId) return;
    window.removeEventListener('pagehide', leave);
    sendRtc('bye');
    dropAll();
    stopLocal();
    callId = null;
    localTile?.li.remove();
    localTile = null;
    grid.hidden = true;
    controls.hidden = true;
    joinButton.hidden = false;
    drawStatus();
  }

  function toggle(button, tracks, what) {
    const on = !tracks.every((t) => t.enabled);
    for (const track of tracks) track.enabled = on;
    setToggle(button, on, what);
    if (what === 'camera') localTile?.li.classList.toggle('camera-off', !on);
  }

  joinButton.addEventListener('click', join);
  leaveButton.addEventListener('click', leave);
  cameraButton.addEventListener('click', () => toggle(cameraButton, local?.getVideoTracks() || [], 'camera'));
  micButton.addEventListener('click', () => toggle(micButton, local?.getAudioTracks() || [], 'microphone'));
  drawStatus();

  // Read-only view for tests and debugging: the live connections and the local stream.
  window.tandemCall = Object.freeze({
    peers: () => [...peers.values()].map((p) => p.pc),
    localStream: () => local,
    trace: () => [...steps],
  });

  return {
    signal,
    userLeft(user) {
      for (const peer of [...peers.values()]) if (peer.user === user) drop(peer.id);
    },
    rejoined() {
      if (!callId) return;
      dropAll();
      sendRtc('hello');
    },
    close() {
      leave();
      delete window.tandemCall;
    },
  };
}
