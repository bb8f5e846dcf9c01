// The WebRTC softphone, on JsSIP: a SIP user agent over Asterisk's WebSocket, one video call at a time.
import JsSIP from 'jssip';
import { t } from './i18n.js';

// Local network, no TURN needed; Asterisk is ICE-lite-like on its side (host candidates).
export const PC_CONFIG = { iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };

export function createUA({ wsUrl, uri, password, displayName, register }) {
  const socket = new JsSIP.WebSocketInterface(wsUrl);
  return new JsSIP.UA({
    sockets: [socket],
    uri,
    password,
    display_name: displayName,
    register,
    register_expires: 300,
    session_timers: false, // Asterisk does not need them; keeps re-INVITEs/UPDATEs out of the call
    connection_recovery_min_interval: 2,
    connection_recovery_max_interval: 30,
    user_agent: 'huiyan-web',
  });
}

/** A video call as a guest (no registration), as the public pages place it: `sip` is what the API hands out
 *  ({ws_url, target, from_uri, display_name, headers}). `on.session(s)` when placed, `on.confirmed(s)` when
 *  answered, `on.end(message)` once when it fails or ends (message null for a normal end, else plain words);
 *  `on.wanted()` false: the page gave up before the WebSocket was up, so no call is placed.
 *  The caller stops the returned UA when done with it. */
export function guestCall(sip, stream, remoteVideo, on = {}) {
  const ua = createUA({ wsUrl: sip.ws_url, uri: sip.from_uri, displayName: sip.display_name, register: false });
  let session = null;
  let placed = false;
  let done = false;
  const end = (message) => { if (!done) { done = true; if (on.end) on.end(message); } };
  ua.on('connected', () => {
    if (placed || done || (on.wanted && !on.wanted())) return; // hung up before the WebSocket was up
    placed = true;
    session = ua.call(sip.target, {
      mediaStream: stream,
      extraHeaders: sip.headers,
      pcConfig: PC_CONFIG,
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: true },
    });
    attachRemote(session, remoteVideo);
    if (on.session) on.session(session);
    session.on('confirmed', () => { if (on.confirmed) on.confirmed(session); });
    session.on('ended', (e) => end(e.originator === 'local' ? null : explainEnd(e.cause)));
    session.on('failed', (e) => end(explainEnd(e.cause)));
  });
  ua.on('disconnected', (e) => {
    if (!placed) { end(t('err_network')); return; }
    if (e && e.error && session && !done) end(t('err_network_lost'));
  });
  ua.start();
  return ua;
}

/** Show the remote side's tracks in `video` as they arrive. */
export function attachRemote(session, video) {
  const show = (pc) => {
    const stream = new MediaStream();
    const add = (track) => {
      if (!stream.getTracks().includes(track)) stream.addTrack(track);
      if (video.srcObject !== stream) video.srcObject = stream;
      video.play().catch(() => { /* autoplay refused: the user's next tap starts it */ });
    };
    for (const r of pc.getReceivers()) if (r.track) add(r.track);
    pc.addEventListener('track', (ev) => add(ev.track));
  };
  if (session.connection) show(session.connection);
  else session.on('peerconnection', (e) => show(e.peerconnection));
}

/** Why a call failed or ended, in plain words (JsSIP's causes). null when it ended normally. */
export function explainEnd(cause) {
  const C = JsSIP.C.causes;
  switch (cause) {
    case C.BYE:
    case C.CANCELED:
    case C.NO_ANSWER:
    case C.EXPIRES:
    case C.NO_ACK:
    case undefined:
      return null;
    case C.CONNECTION_ERROR:
    case C.REQUEST_TIMEOUT:
    case C.RTP_TIMEOUT:
      return t('err_network_lost');
    case C.BUSY:
      return t('err_busy');
    case C.NOT_FOUND:
    case C.UNAVAILABLE:
    case C.REJECTED:
    case C.ADDRESS_INCOMPLETE:
    case C.INCOMPATIBLE_SDP:
      return t('err_unavailable');
    case C.USER_DENIED_MEDIA_ACCESS:
      return t('err_camera_denied');
    default:
      return t('err_failed', { detail: cause });
  }
}

/** Inbound audio/video counters of a peer connection (what the tests and the quality badge read). */
export async function mediaStats(pc) {
  const out = { audio: { packetsReceived: 0 }, video: { packetsReceived: 0, framesDecoded: 0 } };
  if (!pc) return out;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    const kind = s.kind || s.mediaType;
    if (kind === 'audio') out.audio.packetsReceived += s.packetsReceived || 0;
    if (kind === 'video') {
      out.video.packetsReceived += s.packetsReceived || 0;
      out.video.framesDecoded += s.framesDecoded || 0;
      const codec = s.codecId && report.get(s.codecId);
      if (codec) out.video.codec = codec.mimeType;
    }
    if (kind === 'audio') {
      const codec = s.codecId && report.get(s.codecId);
      if (codec) out.audio.codec = codec.mimeType;
    }
  });
  return out;
}
