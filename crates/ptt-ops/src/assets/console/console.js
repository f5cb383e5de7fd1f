// The dispatcher's console: log-in, the WebTransport session with the relay
// (control stream + voice datagrams, proto/voice.md), and the page.
//
// The relay treats the console as any terminal: it logs in with Hello, hears
// every joined group at once, asks for the floor to talk, and gets floor,
// emergency and location events on the control stream. The page keeps
// window.pttConsole (see `model`) current for tests and support.
import {
  encodeClientFrame, decode, FrameReader, DecodeError,
  Priority, FloorKind, ErrorReason, RegroupChange, AlertAckKind, PresenceState, reasonText,
} from './proto.js';
import { VoiceSender, VoicePlayout, encodeProbe, MAX_DATAGRAM_SIZE } from './voice.js';
import { getJson } from './api.js';
import { DistrictMap } from './map.js';
import { RollCall, emptyRollCall } from './rollcall.js';
import { StatusFeed } from './statusfeed.js';
import { PrivateCall, noPrivateCall } from './privatecall.js';
import { RecentBursts } from './bursts.js';
import { OperatorActions, noOperator } from './operator.js';

const PROTOCOL_VERSION = 1;
const CLIENT_VERSION = 'ptt-console/0.1';
const HELLO_TIMEOUT_MS = 10000;
const KEEPALIVE_MS = 1000; // voice.md §1.2: an idle terminal sends something every second
const ALL_CALL_ARM_MS = 5000;
// The relay's default `backup-radius-m`, drawn only if /api/v1/console
// (which gives the relay's own) came from a relay too old to say.
const DEFAULT_BACKUP_RADIUS_M = 400;
// Status messages loaded from the ops API at log-in, so a reload does not
// start from an empty feed.
const STATUS_HISTORY = 20;
// Membership changes read at log-in to tell which members an operator
// added (the API's most: zone logic's churn shares the listing).
const REGROUP_HISTORY = 1000;

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const setText = (e, text) => {
  if (e.textContent !== text) e.textContent = text;
};

// ---- what tests read -------------------------------------------------------

// window.pttConsole. state: "login" (the form, never logged in or a log-in
// failed), "connecting", "online", "closed" (a session ended; the form is
// back). groups[id]: holder (display name or null), emergency (bool),
// framesDecoded, framesDropped, framesLost, peakLevel (0..1, max |sample|
// decoded so far), joined (bool), members (terminal ids zone logic pulled
// in: a passing patrol's compound guards, a backup call's; and those an
// operator added through the admin API), memberKinds ({terminal id: "zone",
// "backup" or "admin"}: why each is there). talk.state:
// "idle", "requesting", "queued", "granted", "releasing", "denied",
// "revoked". positions[terminal id]: {lat, lon, at} (at: unix ms received).
// rollCall: see rollcall.js; privateCall: see privatecall.js; statusFeed:
// see statusfeed.js, newest first; operator: see operator.js.
const model = {
  state: 'login',
  terminal: null, // { id, name }
  groups: {},
  positions: {},
  rollCall: emptyRollCall(),
  privateCall: noPrivateCall(),
  statusFeed: [],
  operator: noOperator(),
  selectedGroup: null,
  talk: { state: 'idle', group: null, accessMs: null, queuePosition: null, framesSent: 0 },
  voice: { malformed: 0, unknownGroup: 0, failed: 0, probesSent: 0, captureRate: null },
  rttMs: null,
  lastError: null,
};
window.pttConsole = model;

function setState(state) {
  model.state = state;
  const conn = $('conn');
  conn.className = 'conn ' + (state === 'online' ? 'up' : state === 'connecting' ? 'wait' : 'down');
  setText(conn, { login: 'offline', connecting: 'connecting…', online: 'online', closed: 'disconnected' }[state]);
  $('login-view').hidden = state === 'online';
  $('console-view').hidden = state !== 'online';
  $('logout').hidden = state !== 'online';
  $('operator-form').hidden = state !== 'online';
  $('login-button').disabled = state === 'connecting';
}

// Shows an error where the dispatcher looks: the log-in form when offline,
// the status line when online; and keeps it in model.lastError.
function showError(message) {
  model.lastError = message;
  if (model.state === 'online') setText($('status-line'), message);
  else setText($('login-error'), message);
}

// ---- the session -----------------------------------------------------------

/** A log-in refused or impossible; the message is for the dispatcher. */
class LoginError extends Error {}

function hexBytes(hex) {
  if (typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) {
    throw new LoginError('The relay sent an invalid certificate hash');
  }
  return Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));
}

function loginErrorText(error) {
  switch (error.reason) {
    case ErrorReason.AUTH_FAILED: return 'Wrong terminal id or secret';
    case ErrorReason.TERMINAL_DISABLED: return 'This terminal is disabled';
    case ErrorReason.RATE_LIMITED: return 'Too many log-in attempts; wait a minute and try again';
    default: return 'Log-in refused: ' + reasonText('ErrorReason', error.reason) + (error.detail ? ' (' + error.detail + ')' : '');
  }
}

/**
 * One WebTransport session with the relay: the control stream (length-
 * prefixed protobuf both ways, voice.md §2) and voice datagrams. `open()`
 * logs in and resolves to HelloOk; once the page is ready for them,
 * `start()` passes every ServerMessage to `onMessage(msg, request)`
 * (request: what this session sent under the message's request_id, if
 * anything), those that came in between (late entry: FloorTaken and
 * EmergencyState right after HelloOk) first. Datagrams go to `onDatagram`.
 * `onClosed(message)` is called once if a started session ends.
 */
class Session {
  constructor({ onMessage, onDatagram, onClosed }) {
    this.onMessage = onMessage;
    this.onDatagram = onDatagram;
    this.onClosed = onClosed;
    this.nextRequestId = 1;
    this.requests = new Map(); // request id → the body sent, e.g. { floorRequest: {...} }
    this.closed = false;
    this.online = false;
    this.endReason = null; // the relay's own word (Error, GoingAway), if it gave one
    this.endMessage = null;
    this.backlog = []; // messages after HelloOk, until start()
    this.lastDatagramAt = 0;
    this.tiles = null; // from /api/v1/console at open()
    this.backupRadiusM = DEFAULT_BACKUP_RADIUS_M;
  }

  async open(terminalId, secret) {
    // The certificate rotates, so its hash is fetched at every connect.
    const res = await fetch('/api/v1/console', { cache: 'no-store' });
    if (!res.ok) throw new LoginError('The console endpoint answered HTTP ' + res.status);
    const cfg = await res.json();
    this.tiles = cfg.tiles || null; // the map's tile server, if the site has one
    this.backupRadiusM = cfg.backup_radius_m > 0 ? cfg.backup_radius_m : DEFAULT_BACKUP_RADIUS_M;
    const url = 'https://' + location.hostname + ':' + cfg.port + cfg.path;
    try {
      this.transport = new WebTransport(url, {
        serverCertificateHashes: [{ algorithm: 'sha-256', value: hexBytes(cfg.certificate_sha256) }],
      });
      this.transport.closed.then(
        (info) => this.end(this.endReason || 'The relay closed the session' + (info && info.reason ? ': ' + info.reason : '')),
        (e) => this.end(this.endReason || 'Connection lost: ' + e.message),
      );
      await this.transport.ready;
    } catch (e) {
      if (e instanceof LoginError) throw e;
      throw new LoginError('Cannot reach the relay at ' + url + ': ' + e.message);
    }
    const stream = await this.transport.createBidirectionalStream();
    this.writer = stream.writable.getWriter();
    this.datagramWriter = this.transport.datagrams.writable.getWriter();
    this.readControl(stream.readable);
    this.readDatagrams();

    const answer = new Promise((resolve, reject) => {
      this.helloWaiter = { resolve, reject };
      setTimeout(() => reject(new LoginError('The relay did not answer the log-in')), HELLO_TIMEOUT_MS);
    });
    const maxDatagram = Math.min(MAX_DATAGRAM_SIZE, this.transport.datagrams.maxDatagramSize || MAX_DATAGRAM_SIZE);
    this.helloId = this.request({
      hello: {
        protocolVersion: PROTOCOL_VERSION,
        terminalId,
        secret: new TextEncoder().encode(secret),
        clientVersion: CLIENT_VERSION,
        // location: the control room wants every terminal's LocationReport.
        capabilities: { datagrams: true, maxDatagramSize: maxDatagram, privateCalls: true, location: true },
      },
    });
    try {
      const m = await answer;
      if (m.body === 'error') throw new LoginError(loginErrorText(m.error));
      if (m.body !== 'helloOk') throw new LoginError('Unexpected answer to the log-in: ' + m.body);
      if (!m.helloOk.datagrams) throw new LoginError('The relay offers no voice datagrams to this browser');
      return m.helloOk;
    } catch (e) {
      this.close(e.message);
      throw e;
    } finally {
      this.helloWaiter = null;
    }
  }

  /** Delivers the messages received since HelloOk, then every new one. */
  start() {
    if (this.closed) {
      this.onClosed(this.endMessage);
      return;
    }
    this.online = true;
    for (const m of this.backlog.splice(0)) this.dispatch(m);
  }

  /** Sends a request with a fresh request_id; returns the id. */
  request(body) {
    const requestId = this.nextRequestId++;
    this.requests.set(requestId, body);
    this.writer.write(encodeClientFrame({ requestId, ...body }))
      .catch((e) => this.close('Cannot write to the relay: ' + e.message));
    return requestId;
  }

  sendDatagram(bytes) {
    this.lastDatagramAt = performance.now();
    this.datagramWriter.write(bytes).catch((e) => this.close('Cannot send voice: ' + e.message));
  }

  async readControl(readable) {
    const reader = readable.getReader();
    const frames = new FrameReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const body of frames.push(value)) {
          let m;
          try {
            m = decode('ServerMessage', body);
          } catch (e) {
            if (!(e instanceof DecodeError)) throw e;
            showError('Undecodable message from the relay ignored: ' + e.message);
            continue;
          }
          this.dispatch(m);
        }
      }
      this.close(this.endReason || 'The relay ended the control stream');
    } catch (e) {
      // A framing error cannot be resynchronised: close (voice.md §2.3).
      this.close(this.endReason || 'Control stream failed: ' + e.message, 1);
    }
  }

  async readDatagrams() {
    const reader = this.transport.datagrams.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        // One bad datagram (or a decoder that rejects its audio) costs that
        // datagram, never the session: counted and shown, then the next.
        try {
          this.onDatagram(value);
        } catch (e) {
          model.voice.failed += 1;
          showError('A voice datagram could not be played: ' + e.message);
        }
      }
    } catch (e) {
      this.close(this.endReason || 'Voice datagrams failed: ' + e.message);
    }
  }

  dispatch(m) {
    if (this.helloWaiter && m.requestId === this.helloId) {
      this.helloWaiter.resolve(m);
      return;
    }
    if (!this.online) {
      this.backlog.push(m);
      return;
    }
    const request = this.requests.get(m.requestId);
    if (m.requestId !== 0) this.requests.delete(m.requestId);
    if (m.body === 'error' && m.requestId === 0) this.endReason = 'The relay refused: ' + reasonText('ErrorReason', m.error.reason);
    if (m.body === 'goingAway') {
      const g = m.goingAway;
      this.endReason = 'The relay is going away: ' + reasonText('GoingAwayReason', g.reason) + (g.detail ? ' (' + g.detail + ')' : '');
    }
    this.onMessage(m, request);
  }

  /** Closes the session (code 0: normal, 1: protocol error, voice.md §1.2). */
  close(message, code = 0) {
    this.end(message);
    try {
      this.transport.close({ closeCode: code, reason: message.slice(0, 100) });
    } catch (e) {
      // Already closed by the relay: nothing left to close.
    }
  }

  end(message) {
    if (this.closed) return;
    this.closed = true;
    this.endMessage = message;
    if (this.helloWaiter) this.helloWaiter.reject(new LoginError(message));
    if (this.online) this.onClosed(message);
  }
}

// ---- log-in ----------------------------------------------------------------

let session = null;
let playout = null;
let timers = [];
let maxDatagramSize = MAX_DATAGRAM_SIZE; // HelloOk's, for what we send
const sender = new VoiceSender({
  send: (datagram) => { if (session) session.sendDatagram(datagram); },
  onFrameSent: () => { model.talk.framesSent += 1; },
  onError: (message) => showError(message),
});

async function login(ev) {
  ev.preventDefault();
  const id = Number($('terminal-id').value);
  if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) {
    setText($('login-error'), 'Enter the terminal id (a number)');
    return;
  }
  setText($('login-error'), '');
  model.lastError = null;
  setState('connecting');
  // Audio output is created in the click, so the browser lets it play.
  if (!playout) {
    playout = new VoicePlayout(model.voice, {
      sendProbe: () => { if (session) session.sendDatagram(encodeProbe()); },
      onError: showError,
    });
  }
  playout.resume().catch((e) => showError('Audio output blocked: ' + e.message));
  const s = new Session({
    onMessage,
    onDatagram: (bytes) => playout.receive(bytes),
    onClosed: (message) => sessionEnded(s, message),
  });
  session = s;
  try {
    const hello = await s.open(id, $('secret').value);
    online(hello);
    s.start();
  } catch (e) {
    const message = e instanceof LoginError ? e.message : 'Log-in failed: ' + e.message;
    session = null;
    s.close(message);
    setState('login');
    showError(message);
  }
}

function online(hello) {
  model.terminal = { id: hello.terminalId, name: hello.terminalName };
  setText($('dispatcher-name'), hello.terminalName || 'terminal ' + hello.terminalId);
  setText($('status-line'), '');
  playout.maxSize = hello.maxDatagramSize || MAX_DATAGRAM_SIZE;
  maxDatagramSize = playout.maxSize;
  $('secret').value = '';
  $('groups').replaceChildren();
  rows.clear();
  model.groups = {};
  model.positions = {};
  pulled.clear();
  directoryGroups = new Set(hello.groups.map((g) => g.groupId));
  statusFeed.clear();
  statusFeed.setCodes(hello.statusCodes || []);
  districtMap.reset();
  districtMap.setTiles(session.tiles);
  const credit = $('map-tiles');
  credit.hidden = !session.tiles;
  setText(credit, session.tiles ? 'tiles: ' + new URL(session.tiles).host : '');
  for (const g of hello.groups) addGroup(g);
  refreshRollCallGroups();
  const first = hello.groups.find((g) => g.joined && g.rights && g.rights.talk);
  selectGroup(first ? first.groupId : null);
  $('all-call').hidden = !hello.groups.some((g) => g.rights && g.rights.broadcast);
  setState('online');
  renderTalk();
  // The microphone is asked for now, so the first talk does not wait for
  // the permission prompt; talking asks again if this fails.
  sender.open()
    .then(() => { model.voice.captureRate = sender.sampleRate; })
    .catch((e) => showError('Microphone unavailable: ' + e.message));
  timers.push(setInterval(keepAlive, KEEPALIVE_MS));
  if (hello.pingIntervalMs > 0) timers.push(setInterval(ping, hello.pingIntervalMs));
  loadDistrict(session);
  const s = session;
  statusFeed.loadHistory(STATUS_HISTORY, hello.terminalId)
    .catch((e) => { if (session === s) showError('Status message history unavailable: ' + e.message); });
}

// The map's zones, the terminals' names, roles and last positions, and who
// zone logic has pulled in where: from the ops API once logged in (the
// control stream only tells what changes from now on).
async function loadDistrict(s) {
  const [zones, terminals, groups, regroups] = await Promise.allSettled([
    getJson('/api/v1/zones'), getJson('/api/v1/terminals'), getJson('/api/v1/groups'),
    getJson('/api/v1/regroups?limit=' + REGROUP_HISTORY),
  ]);
  if (session !== s) return;
  if (terminals.status === 'fulfilled') {
    for (const t of terminals.value.terminals) {
      directory.set(t.id, t);
      if (t.location && !model.positions[t.id]) {
        setPosition(t.id, t.location.lat, t.location.lon, t.location.received_at_ms);
      }
    }
    districtMap.setTerminals(terminals.value.terminals);
    for (const t of terminals.value.terminals) districtMap.mark(t.id, 'offline', !t.online);
  } else {
    showError('Terminal names unavailable: ' + terminals.reason.message);
  }
  if (zones.status === 'fulfilled') {
    districtMap.setZones(zones.value.zones);
  } else {
    showError('Map unavailable: ' + zones.reason.message);
    districtMap.zonesUnavailable();
  }
  if (groups.status === 'fulfilled') {
    for (const g of groups.value.groups) {
      for (const d of g.dynamic_members) {
        addMember(g.id, d.terminal, d.zone_name, d.reason === 'backup' ? 'backup' : 'zone');
      }
    }
    if (regroups.status === 'fulfilled') addAdminMembers(groups.value.groups, regroups.value.regroups);
    else showError('Operator-added members unavailable: ' + regroups.reason.message);
  } else {
    showError('Zone-logic members unavailable: ' + groups.reason.message);
  }
  for (const e of emergencies.values()) drawBackup(e);
  for (const st of Object.values(model.groups)) if (st.holderId) districtMap.mark(st.holderId, 'talking', true);
}

// Keep-alive: WebTransport cannot send QUIC PINGs, so an idle console sends
// a kind-1 probe datagram each second without other voice (voice.md §1.2,
// §3.4). Also refreshes the voice counters in the footer.
function keepAlive() {
  if (session && performance.now() - session.lastDatagramAt >= KEEPALIVE_MS) session.sendDatagram(encodeProbe());
  let decoded = 0;
  let dropped = 0;
  for (const g of Object.values(model.groups)) {
    decoded += g.framesDecoded;
    dropped += g.framesDropped;
  }
  setText($('voice-stats'), 'voice: ' + model.talk.framesSent + ' frames sent · ' + decoded + ' decoded · '
    + dropped + ' dropped · ' + model.voice.malformed + ' malformed'
    + (model.voice.captureRate ? ' · microphone ' + model.voice.captureRate / 1000 + ' kHz' : '')
    + (model.rttMs !== null ? ' · rtt ' + model.rttMs + ' ms' : ''));
}

// The relay asked for Pings (HelloOk.ping_interval_ms); the Pong gives the RTT.
function ping() {
  if (session) session.request({ ping: { clientSendTimeUs: Math.round(performance.now() * 1000) } });
}

function sessionEnded(s, message) {
  if (session !== s) return;
  session = null;
  for (const t of timers) clearInterval(t);
  timers = [];
  sender.close();
  playout.clear();
  operator.reset();
  talk.pressed = false;
  disarmAllCall();
  setTalk('idle');
  emergencies.clear();
  renderEmergency();
  privateCall.reset();
  callGroup = null;
  beforeCall = null;
  setState('closed');
  showError(message);
}

function logout() {
  if (!session) return;
  const s = session;
  sessionEnded(s, '');
  model.lastError = null;
  s.close('logged out');
}

// ---- groups ------------------------------------------------------------------

const rows = new Map(); // group id → { root, holder, emergency, mute, volume, join, members, info }
let directoryGroups = new Set(); // the groups of HelloOk: the directory's (the ops API knows them)

// A group row: name, who talks, emergency, Join (when not joined), Recent
// (the last bursts), mute and volume; below, the members zone logic pulled
// in (`li[data-member]`) and the recent bursts.
function addGroup(info) {
  const id = info.groupId;
  const existing = rows.get(id);
  if (existing) {
    // Regrouped into a group already shown, or joined: new rights or joined state.
    existing.info = info;
    model.groups[id].joined = info.joined;
    existing.root.classList.toggle('not-joined', !info.joined);
    existing.root.title = rowTitle(info);
    existing.join.hidden = info.joined;
    existing.join.disabled = false;
    existing.leave.hidden = !info.joined || !directoryGroups.has(id);
    existing.leave.disabled = false;
    if (info.joined) playout.addGroup(id, model.groups[id]);
    else playout.removeGroup(id);
    if (!info.joined && model.selectedGroup === id) selectGroup(null);
    if (info.joined && id === callGroup) selectGroup(id);
    scheduleRollCallGroups();
    return;
  }
  const stats = {
    name: info.name,
    joined: info.joined,
    holder: null,
    holderId: 0,
    emergency: false,
    muted: false,
    volume: 1,
    framesDecoded: 0,
    framesDropped: 0,
    framesLost: 0,
    peakLevel: 0,
    members: [],
    memberKinds: {},
  };
  model.groups[id] = stats;
  const root = el('div', 'group-row' + (info.joined ? '' : ' not-joined'));
  root.dataset.group = String(id);
  root.tabIndex = 0;
  root.setAttribute('role', 'option');
  root.title = rowTitle(info);
  const name = el('span', 'name', info.name || 'group ' + id);
  const holder = el('span', 'holder');
  const emergency = el('span', 'emergency', 'EMERGENCY');
  emergency.hidden = true;
  const tools = el('span', 'tools');
  const join = el('button', 'join', 'Join');
  join.type = 'button';
  join.hidden = info.joined;
  join.title = 'Join ' + (info.name || 'group ' + id) + ' to hear it and talk in it';
  // Leaving stops hearing a group (a private call's ends with the call).
  const leave = el('button', 'leave', 'Leave');
  leave.type = 'button';
  leave.hidden = !info.joined || !directoryGroups.has(id);
  leave.title = 'Stop hearing ' + (info.name || 'group ' + id);
  tools.append(join, leave);
  // The ops API knows the directory's groups only, not a private call's.
  const recent = directoryGroups.has(id) ? bursts.attach(id) : null;
  if (recent) tools.append(recent.toggle);
  // An operator adds members to the directory's groups (not a private call's).
  const adding = directoryGroups.has(id) ? operator.addControl(id) : null;
  if (adding) tools.append(adding.button);
  const mute = el('button', 'mute', 'Mute');
  mute.type = 'button';
  mute.setAttribute('aria-pressed', 'false');
  mute.setAttribute('aria-label', 'Mute ' + info.name);
  const volume = el('input', 'volume');
  volume.type = 'range';
  volume.min = '0';
  volume.max = '100';
  volume.value = '100';
  volume.setAttribute('aria-label', 'Volume of ' + info.name);
  const members = el('ul', 'members');
  members.hidden = true;
  members.setAttribute('aria-label', 'Added by zone logic or an operator');
  root.append(name, holder, emergency, tools, mute, volume, members);
  if (adding) root.append(adding.form);
  if (recent) root.append(recent.list);
  $('groups').append(root);
  rows.set(id, { root, holder, emergency, mute, volume, join, leave, members, info });

  mute.addEventListener('click', () => {
    stats.muted = !stats.muted;
    mute.setAttribute('aria-pressed', String(stats.muted));
    setText(mute, stats.muted ? 'Muted' : 'Mute');
    root.classList.toggle('muted', stats.muted);
    playout.setLevel(id, stats.muted, stats.volume);
  });
  volume.addEventListener('input', () => {
    stats.volume = Number(volume.value) / 100;
    playout.setLevel(id, stats.muted, stats.volume);
  });
  join.addEventListener('click', () => {
    if (!session) return;
    join.disabled = true;
    session.request({ joinGroup: { groupId: id } });
  });
  leave.addEventListener('click', () => {
    if (!session) return;
    leave.disabled = true;
    session.request({ leaveGroup: { groupId: id } });
  });
  root.addEventListener('click', (e) => {
    if (!e.target.closest('.mute, .volume, .tools, .recent, .members, .add-member-form')) selectGroup(id);
  });
  root.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.target === root) selectGroup(id);
  });
  if (info.joined) playout.addGroup(id, stats);
  if (info.joined && id === callGroup) selectGroup(id);
  scheduleRollCallGroups();
}

function rowTitle(info) {
  return info.joined ? 'Click to talk in ' + info.name : info.name + ' (not joined: Join to hear it)';
}

// ---- added members: zone logic's and operators' ---------------------------------

const pulled = new Map(); // terminal id → in how many groups zone logic put it

/**
 * Lists `terminalId` as added to `groupId`: `li[data-member]` with a class
 * for why (`kind`: "zone" — a passing patrol, "backup" — a backup call,
 * "admin" — an operator; `zone`: the premises, for display). An operator's
 * get a remove button; zone logic's come and go with it (the relay refuses
 * to remove them by hand). Only zone logic's ring their map marker.
 */
function addMember(groupId, terminalId, zone, kind = 'zone') {
  const stats = model.groups[groupId];
  const row = rows.get(groupId);
  if (!stats || !row || stats.members.includes(terminalId)) return;
  stats.members.push(terminalId);
  stats.memberKinds[terminalId] = kind;
  const li = el('li', kind);
  li.dataset.member = String(terminalId);
  li.title = terminalName(terminalId) + ': ' + { zone: 'pulled in by a passing patrol', backup: 'pulled in by a backup call', admin: 'added by an operator' }[kind];
  li.append(el('span', 'member-name', terminalName(terminalId) + (zone ? ' · ' + zone : kind === 'admin' ? ' · operator' : '')));
  if (kind === 'admin') li.append(operator.removeButton(groupId, terminalId));
  row.members.append(li);
  if (kind !== 'admin') {
    pulled.set(terminalId, (pulled.get(terminalId) || 0) + 1);
    districtMap.mark(terminalId, 'pulled', true);
  }
  renderMembers(groupId);
}

function removeMember(groupId, terminalId) {
  const stats = model.groups[groupId];
  const row = rows.get(groupId);
  if (!stats || !row || !stats.members.includes(terminalId)) return;
  const kind = stats.memberKinds[terminalId];
  stats.members = stats.members.filter((t) => t !== terminalId);
  delete stats.memberKinds[terminalId];
  const li = row.members.querySelector('[data-member="' + terminalId + '"]');
  if (li) li.remove();
  if (kind !== 'admin') {
    const n = (pulled.get(terminalId) || 1) - 1;
    if (n > 0) pulled.set(terminalId, n);
    else pulled.delete(terminalId);
    districtMap.mark(terminalId, 'pulled', n > 0);
  }
  renderMembers(groupId);
}

/**
 * The members operators added before this log-in: the relay does not list
 * them apart, so they are the latest admin change of each (group, terminal)
 * in /api/v1/regroups that added it and that /api/v1/groups still lists
 * (and not as zone logic's).
 */
function addAdminMembers(groups, regroups) {
  const latest = new Map(); // "group:terminal" → the newest admin change
  for (const r of regroups) {
    if (r.reason !== 'admin') continue;
    const key = r.group.id + ':' + r.terminal.id;
    if (!latest.has(key)) latest.set(key, r);
  }
  const byId = new Map(groups.map((g) => [g.id, g]));
  for (const r of latest.values()) {
    const g = byId.get(r.group.id);
    if (!r.added || !g || !g.members.includes(r.terminal.id)) continue;
    if (g.dynamic_members.some((d) => d.terminal === r.terminal.id)) continue;
    addMember(g.id, r.terminal.id, '', 'admin');
  }
}

function renderMembers(groupId) {
  const row = rows.get(groupId);
  const n = model.groups[groupId].members.length;
  row.root.classList.toggle('regrouped', n > 0);
  row.members.hidden = n === 0;
}

// ---- terminals -----------------------------------------------------------------

const directory = new Map(); // terminal id → /api/v1/terminals entry (or {name} from Presence)

function terminalName(id) {
  const t = directory.get(id);
  return t && t.name ? t.name : 'terminal ' + id;
}

/** A terminal typed by an operator: its id, or its name (any case); null if neither. */
function findTerminal(text) {
  const s = String(text).trim();
  if (/^\d+$/.test(s)) {
    const id = Number(s);
    return id >= 1 && id <= 0xffffffff ? id : null;
  }
  const name = s.toLowerCase();
  if (!name) return null;
  for (const t of directory.values()) if (t.name && t.name.toLowerCase() === name) return t.id;
  return null;
}

/** Records a terminal's position and moves its marker (at the next frame). */
function setPosition(id, lat, lon, at) {
  model.positions[id] = { lat, lon, at };
  districtMap.move(id, lat, lon);
}

function onPresence(p) {
  if (p.name && !directory.has(p.terminalId)) directory.set(p.terminalId, { id: p.terminalId, name: p.name });
  if (p.state === PresenceState.ONLINE) districtMap.mark(p.terminalId, 'offline', false);
  else if (p.state === PresenceState.OFFLINE) districtMap.mark(p.terminalId, 'offline', true);
}

function removeGroup(id) {
  const row = rows.get(id);
  if (!row) return;
  for (const t of [...model.groups[id].members]) removeMember(id, t);
  row.root.remove();
  rows.delete(id);
  delete model.groups[id];
  districtMap.setBackup(id, null);
  playout.removeGroup(id);
  emergencies.delete(id);
  renderEmergency();
  if (model.selectedGroup === id) selectGroup(null);
  scheduleRollCallGroups();
}

// The roll call's targets follow the groups: the directory's groups the
// console is in, joined first (a group it left is still listed, as the
// relay alerts any group; a private call's never).
let rollCallQueued = false;
function scheduleRollCallGroups() {
  if (rollCallQueued) return;
  rollCallQueued = true;
  queueMicrotask(refreshRollCallGroups);
}

function refreshRollCallGroups() {
  rollCallQueued = false;
  const infos = [...rows.values()].map((r) => r.info).filter((g) => directoryGroups.has(g.groupId));
  rollCall.setGroups([...infos.filter((g) => g.joined), ...infos.filter((g) => !g.joined)]);
}

function selectGroup(id) {
  const row = rows.get(id);
  model.selectedGroup = row && row.info.joined ? id : null;
  for (const [gid, r] of rows) {
    r.root.classList.toggle('selected', gid === model.selectedGroup);
    r.root.setAttribute('aria-selected', String(gid === model.selectedGroup));
  }
  renderTalk();
}

function groupName(id) {
  const row = rows.get(id);
  return row ? row.info.name || 'group ' + id : 'group ' + id;
}

function setHolder(groupId, holderId, name) {
  const stats = model.groups[groupId];
  const row = rows.get(groupId);
  if (!stats || !row) return;
  if (stats.holderId) districtMap.mark(stats.holderId, 'talking', false);
  if (holderId) districtMap.mark(holderId, 'talking', true);
  stats.holderId = holderId;
  stats.holder = holderId ? name || 'terminal ' + holderId : null;
  setText(row.holder, stats.holder || '');
  row.root.classList.toggle('held', !!holderId);
  row.root.classList.toggle('mine', !!holderId && model.terminal && holderId === model.terminal.id);
}

// ---- talking -----------------------------------------------------------------

// The press being served. `group` 0 is an all-call (FloorRequest group 0,
// kind BROADCAST: ptt.proto). `pressed` is whether PTT is still held: an
// answer that comes after the release gives the floor straight back.
const talk = { state: 'idle', group: null, burstId: 0, requestedAt: 0, pressed: false, reason: '' };
const BUSY = ['requesting', 'queued', 'granted', 'releasing'];

async function press(allCall) {
  if (model.state !== 'online' || talk.pressed || BUSY.includes(talk.state)) return;
  const groupId = allCall ? 0 : model.selectedGroup;
  if (groupId === null) {
    setTalk('denied', 'select a group first');
    return;
  }
  disarmAllCall();
  talk.pressed = true;
  try {
    await sender.open();
    model.voice.captureRate = sender.sampleRate;
  } catch (e) {
    talk.pressed = false;
    setTalk('denied', 'microphone unavailable (' + e.message + ')');
    return;
  }
  if (!talk.pressed || !session) return; // released while the microphone opened
  const row = rows.get(groupId);
  const rights = (row && row.info.rights) || {};
  talk.group = groupId;
  talk.burstId = 0;
  talk.requestedAt = performance.now();
  model.talk.queuePosition = null;
  session.request({
    floorRequest: {
      groupId,
      // Dispatchers talk at their group's highest priority, never EMERGENCY
      // (that is the emergency call's alone).
      priority: allCall ? Priority.DISPATCHER : Math.min(rights.maxPriority || Priority.NORMAL, Priority.DISPATCHER),
      kind: allCall ? FloorKind.BROADCAST : FloorKind.NORMAL,
    },
  });
  setTalk('requesting');
}

function release() {
  if (!talk.pressed) return;
  talk.pressed = false;
  if (talk.state === 'queued') {
    session.request({ floorRelease: { groupId: talk.group, burstId: 0 } });
    setTalk('idle');
  } else if (talk.state === 'granted') {
    endBurst();
  }
  // 'requesting': the answer sees `pressed` false and gives the floor back.
}

async function endBurst() {
  setTalk('releasing');
  const s = session;
  const lastSequence = await sender.stop();
  if (s && session === s) s.request({ floorRelease: { groupId: talk.group, burstId: talk.burstId, lastSequence } });
  if (talk.state === 'releasing') setTalk('idle');
}

function onFloorGranted(g) {
  if (g.groupId !== 0) setHolder(g.groupId, model.terminal.id, model.terminal.name);
  if (g.groupId !== talk.group || (talk.state !== 'requesting' && talk.state !== 'queued')) return;
  talk.burstId = g.burstId;
  model.talk.accessMs = Math.round(performance.now() - talk.requestedAt);
  if (!talk.pressed) {
    session.request({ floorRelease: { groupId: g.groupId, burstId: g.burstId } });
    setTalk('idle');
    return;
  }
  sender.start({ groupId: g.groupId, burstId: g.burstId, maxSize: maxDatagramSize });
  setTalk('granted');
}

function onFloorQueued(groupId, position) {
  if (groupId !== talk.group || (talk.state !== 'requesting' && talk.state !== 'queued')) return;
  if (!talk.pressed) {
    session.request({ floorRelease: { groupId, burstId: 0 } });
    setTalk('idle');
    return;
  }
  model.talk.queuePosition = position;
  setTalk('queued');
}

function onFloorDenied(d) {
  if (talk.group === 0 && d.groupId !== 0 && talk.state === 'granted') {
    // An all-call that does not reach one of its groups (e.g. an emergency there).
    showError('The all-call does not reach ' + groupName(d.groupId) + ': ' + reasonText('FloorDenyReason', d.reason));
    return;
  }
  if (d.groupId !== talk.group || (talk.state !== 'requesting' && talk.state !== 'queued')) return;
  setTalk('denied', reasonText('FloorDenyReason', d.reason));
}

function onFloorRevoked(r) {
  if (talk.group === 0 && r.groupId !== 0 && talk.state === 'granted') {
    showError('The all-call no longer reaches ' + groupName(r.groupId) + ': ' + reasonText('FloorRevokeReason', r.reason));
    return;
  }
  if (r.groupId !== talk.group || talk.state !== 'granted') return;
  sender.abort();
  setTalk('revoked', reasonText('FloorRevokeReason', r.reason));
}

function setTalk(state, reason = '') {
  talk.state = state;
  talk.reason = reason;
  renderTalk();
}

function renderTalk() {
  Object.assign(model.talk, { state: talk.state, group: talk.group });
  const target = allCallArmed() ? 'every all-call group' : model.selectedGroup !== null ? groupName(model.selectedGroup) : null;
  setText($('talk-group'), target ? 'Talk group: ' + target : 'No talk group selected');
  let text;
  switch (talk.state) {
    case 'requesting': text = 'Requesting the floor…'; break;
    case 'granted': text = 'Talking — granted in ' + model.talk.accessMs + ' ms'; break;
    case 'queued': text = 'Queued at position ' + model.talk.queuePosition; break;
    case 'denied': text = 'Denied: ' + talk.reason; break;
    case 'revoked': text = 'Floor revoked: ' + talk.reason; break;
    case 'releasing': text = 'Releasing…'; break;
    default: text = allCallArmed() ? 'All-call armed: hold to talk to every group' : target ? 'Hold SPACE or the button to talk' : 'Click a group to talk in it';
  }
  setText($('talk-state'), text);
  $('talk').classList.toggle('talking', talk.state === 'granted');
  $('talk').classList.toggle('waiting', talk.state === 'requesting' || talk.state === 'queued');
}

// The all-call is guarded: a first click arms it for 5 s, then holding
// #all-call (or #talk, or SPACE) talks to every all-call group.
let allCallTimer = null;
let allCallPressed = false; // the pointer press that started an all-call; its click must not re-arm

function allCallArmed() {
  return allCallTimer !== null;
}

function armAllCall() {
  clearTimeout(allCallTimer);
  allCallTimer = setTimeout(disarmAllCall, ALL_CALL_ARM_MS);
  $('all-call').classList.add('armed');
  setText($('all-call'), 'Hold to all-call');
  renderTalk();
}

function disarmAllCall() {
  if (allCallTimer === null) return;
  clearTimeout(allCallTimer);
  allCallTimer = null;
  $('all-call').classList.remove('armed');
  setText($('all-call'), 'All-call');
  renderTalk();
}

// ---- emergencies ---------------------------------------------------------------

const emergencies = new Map(); // group id → active EmergencyState
const locations = new Map(); // terminal id → latest LocationReport
const silenced = new Set(); // "group:declared_at" of emergencies whose alarm was silenced
let bannerGroup = 0; // the group whose emergency the banner shows (and #clear-emergency clears)

function onEmergencyState(e) {
  const before = emergencies.get(e.groupId);
  if (before) districtMap.mark(before.declaredBy, 'emergency', false);
  if (e.active) emergencies.set(e.groupId, e);
  else emergencies.delete(e.groupId);
  drawBackup(e);
  const row = rows.get(e.groupId);
  if (model.groups[e.groupId]) model.groups[e.groupId].emergency = e.active;
  if (row) {
    row.emergency.hidden = !e.active;
    row.root.classList.toggle('in-emergency', e.active);
  }
  renderEmergency();
}

function renderEmergency() {
  const active = [...emergencies.values()].sort((a, b) => b.declaredAtUs - a.declaredAtUs);
  const banner = $('emergency-banner');
  banner.hidden = active.length === 0;
  bannerGroup = active.length ? active[0].groupId : 0;
  if (playout) playout.setAlarm(active.some((e) => !silenced.has(e.groupId + ':' + e.declaredAtUs)));
  if (active.length === 0) return;
  const e = active[0];
  const parts = [(e.declaredByName || 'terminal ' + e.declaredBy) + ' in ' + groupName(e.groupId)];
  if (e.text) parts.push('“' + e.text + '”');
  const where = locations.get(e.declaredBy);
  if (where) {
    parts.push('at ' + where.latitudeDeg.toFixed(5) + ', ' + where.longitudeDeg.toFixed(5)
      + (where.accuracyM ? ' (±' + Math.round(where.accuracyM) + ' m)' : ''));
  }
  if (e.declaredAtUs) parts.push('since ' + new Date(e.declaredAtUs / 1000).toLocaleTimeString());
  if (active.length > 1) parts.push('+' + (active.length - 1) + ' more');
  setText($('emergency-text'), parts.join(' · '));
  const clear = $('clear-emergency');
  const row = rows.get(e.groupId);
  clear.disabled = !(row && row.info.rights && row.info.rights.dispatch);
  clear.title = clear.disabled ? 'You may not clear emergencies in this group' : 'Clear the emergency in ' + groupName(e.groupId);
  $('silence-alarm').hidden = !playout || !playout.alarm;
}

function onLocation(l) {
  locations.set(l.terminalId, l);
  setPosition(l.terminalId, l.latitudeDeg, l.longitudeDeg, Date.now());
  for (const e of emergencies.values()) {
    if (e.declaredBy === l.terminalId) {
      drawBackup(e);
      renderEmergency();
    }
  }
}

/**
 * During an emergency, the circle within which a backup call pulls in
 * compounds' guards (`circle.backup-radius`), around the declarer's last
 * position; removed when the emergency ends or has no position.
 */
function drawBackup(e) {
  const where = e.active ? model.positions[e.declaredBy] : null;
  districtMap.setBackup(e.groupId, where ? { lat: where.lat, lon: where.lon } : null, session ? session.backupRadiusM : DEFAULT_BACKUP_RADIUS_M);
  if (e.active) districtMap.mark(e.declaredBy, 'emergency', true);
}

// ---- messages from the relay ---------------------------------------------------

function onMessage(m, request) {
  switch (m.body) {
    case 'floorGranted': return onFloorGranted(m.floorGranted);
    case 'floorQueued': return onFloorQueued(m.floorQueued.groupId, m.floorQueued.position);
    case 'queuePositionUpdate': return onFloorQueued(m.queuePositionUpdate.groupId, m.queuePositionUpdate.position);
    case 'floorDenied': return onFloorDenied(m.floorDenied);
    case 'floorRevoked': return onFloorRevoked(m.floorRevoked);
    case 'floorTaken': {
      const t = m.floorTaken;
      setHolder(t.groupId, t.holderTerminalId, t.holderName);
      return playout.burstEnded(t.groupId); // a new holder ends the previous burst (§3.3)
    }
    case 'floorIdle':
      setHolder(m.floorIdle.groupId, 0, '');
      return playout.burstEnded(m.floorIdle.groupId);
    case 'emergencyState': return onEmergencyState(m.emergencyState);
    case 'locationReport': return onLocation(m.locationReport);
    case 'regrouped': return onRegrouped(m.regrouped);
    case 'joinOk': return onJoinOk(m.joinOk);
    case 'leaveOk': return onLeaveOk(m.leaveOk.groupId);
    case 'presence': return onPresence(m.presence);
    case 'statusMessage': return statusFeed.onStatus(m.statusMessage);
    case 'alert': return onAlert(m.alert);
    case 'alertTally': return rollCall.onTally(m.alertTally, m.requestId);
    case 'privateCallSetup': return privateCall.onSetup(m.privateCallSetup, m.requestId);
    case 'privateCallAccept': return privateCall.onAccept(m.privateCallAccept);
    case 'privateCallReject': return privateCall.onReject(m.privateCallReject);
    case 'privateCallEnd': return privateCall.onEnd(m.privateCallEnd);
    case 'pong':
      model.rttMs = Math.round((performance.now() * 1000 - m.pong.clientSendTimeUs) / 1000);
      return undefined;
    case 'error': return onRequestError(m.error, request, m.requestId);
    default:
      // Acks, going-away notices
      // (Session keeps their reason), bodies it does not handle.
      return undefined;
  }
}

// RegroupReason values → why a member is in a group (`li[data-member]`'s
// class): zone logic (a patrol passing, a backup call) or by hand
// (DISPATCHER, ADMIN: the directory changed).
const MEMBER_KIND = { 1: 'zone', 3: 'backup', 5: 'admin', 6: 'admin' };

function onRegrouped(r) {
  if (model.terminal && r.terminalId === model.terminal.id) {
    // The console itself: a group of the directory (zone logic's or an
    // operator's), so it may be left, alerted and has recent bursts.
    if (r.change === RegroupChange.ADDED && r.group) {
      directoryGroups.add(r.groupId);
      addGroup(r.group);
    } else if (r.change === RegroupChange.REMOVED) {
      removeGroup(r.groupId);
      directoryGroups.delete(r.groupId);
      scheduleRollCallGroups();
    }
    return;
  }
  // Someone else's change, told to the control room: zone logic's pulls
  // (a patrol passing a compound, a backup call) show in the group's row.
  // (The relay tells an admin change to the terminal alone; the page shows
  // its own from the admin API's answer, operator.js.)
  if (r.change === RegroupChange.ADDED) addMember(r.groupId, r.terminalId, r.zone, MEMBER_KIND[r.reason] || 'zone');
  else if (r.change === RegroupChange.REMOVED) removeMember(r.groupId, r.terminalId);
}

// JoinOk: the answer to Join, or unsolicited when a private call is answered.
function onJoinOk(j) {
  if (!j.group) return;
  addGroup(j.group);
  if (j.floor) setHolder(j.floor.groupId, j.floor.holderTerminalId, j.floor.holderName);
  if (j.emergency) onEmergencyState(j.emergency);
}

// LeaveOk: the group stays listed, not joined, with Join to come back.
function onLeaveOk(groupId) {
  const row = rows.get(groupId);
  if (!row) return;
  addGroup({ ...row.info, joined: false });
  setHolder(groupId, 0, '');
}

// An alert from another dispatcher: acknowledged as delivered at once (a
// handset does so on its own), and answerable from the feed if asked.
function onAlert(a) {
  if (!session) return;
  const s = session;
  s.request({ alertAck: { alertId: a.alertId, kind: AlertAckKind.DELIVERED } });
  const respond = a.requiresAck
    ? () => { if (session === s) s.request({ alertAck: { alertId: a.alertId, kind: AlertAckKind.RESPONDING } }); }
    : null;
  statusFeed.onAlert(a, respond);
}

function onRequestError(error, request, requestId) {
  const reason = reasonText('ErrorReason', error.reason) + (error.detail ? ' (' + error.detail + ')' : '');
  if (request && request.alert && rollCall.refused(requestId, reason)) return;
  if (privateCall.refused(requestId, request, reason)) return;
  const membership = request && (request.joinGroup || request.leaveGroup);
  if (membership) {
    const row = rows.get(membership.groupId);
    if (row) {
      row.join.disabled = false;
      row.leave.disabled = false;
    }
    showError('Cannot ' + (request.joinGroup ? 'join ' : 'leave ') + groupName(membership.groupId) + ': ' + reason);
    return;
  }
  if (request && request.floorRequest && request.floorRequest.groupId === talk.group && talk.state === 'requesting') {
    setTalk('denied', reason);
    return;
  }
  const what = request ? Object.keys(request)[0] : 'the connection';
  showError('The relay refused ' + what + ': ' + reason);
}

// ---- the panels ----------------------------------------------------------------

const districtMap = new DistrictMap($('map'), { onError: showError });
const bursts = new RecentBursts({ onError: showError });
const statusFeed = new StatusFeed(model.statusFeed, { terminalName, groupName });
const operator = new OperatorActions(model.operator, {
  terminalName,
  groupName,
  findTerminal,
  onAdded: (groupId, terminal) => addMember(groupId, terminal, '', 'admin'),
  onRemoved: (groupId, terminal) => removeMember(groupId, terminal),
  onError: (message) => {
    operatorError = message;
    showError(message);
  },
  // A refusal shown for an earlier try would now mislead.
  onSuccess: () => {
    if (operatorError !== null && model.lastError === operatorError) {
      model.lastError = null;
      setText($('status-line'), '');
    }
    operatorError = null;
  },
});
let operatorError = null; // the operator failure the status line shows, if any

/** Sends a request on the session; throws when offline, so panels can say so. */
function request(body) {
  if (!session) throw new Error('not connected');
  return session.request(body);
}

const rollCall = new RollCall(model.rollCall, { send: (alert) => request({ alert }) });

// The private call's group: selected for talking once joined; when the call
// ends the row goes and the group selected before comes back.
let callGroup = null;
let beforeCall = null;
const privateCall = new PrivateCall(model.privateCall, {
  request,
  terminalName,
  onTalkGroup: (groupId, ended) => {
    if (groupId) {
      if (callGroup === null) beforeCall = model.selectedGroup;
      callGroup = groupId;
      if (rows.has(groupId) && model.groups[groupId].joined) selectGroup(groupId);
      return;
    }
    callGroup = null;
    if (ended !== undefined && rows.has(ended)) removeGroup(ended);
    if (beforeCall !== null && rows.has(beforeCall)) selectGroup(beforeCall);
    beforeCall = null;
  },
});

// ---- wiring ------------------------------------------------------------------

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

$('login-form').addEventListener('submit', login);
$('logout').addEventListener('click', logout);

const talkButton = $('talk');
talkButton.addEventListener('pointerdown', (e) => {
  e.preventDefault();
  press(allCallArmed());
});
for (const type of ['pointerup', 'pointerleave', 'pointercancel']) talkButton.addEventListener(type, release);
talkButton.addEventListener('contextmenu', (e) => e.preventDefault());

const allCallButton = $('all-call');
allCallButton.addEventListener('click', () => {
  if (allCallPressed) allCallPressed = false;
  else armAllCall();
});
allCallButton.addEventListener('pointerdown', () => {
  if (!allCallArmed()) return;
  allCallPressed = true;
  press(true);
});
for (const type of ['pointerup', 'pointerleave', 'pointercancel']) {
  allCallButton.addEventListener(type, () => { if (talk.group === 0) release(); });
}

document.addEventListener('keydown', (e) => {
  if (e.code !== 'Space' || typing(e.target) || model.state !== 'online') return;
  e.preventDefault(); // no page scroll, no button activation
  if (!e.repeat) press(allCallArmed());
});
document.addEventListener('keyup', (e) => {
  if (e.code !== 'Space' || typing(e.target) || model.state !== 'online') return;
  e.preventDefault();
  release();
});
// A key or pointer released outside the window never reports: release on blur
// rather than keep the floor.
window.addEventListener('blur', release);

$('map-labels').addEventListener('change', () => {
  $('map').classList.toggle('no-labels', !$('map-labels').checked);
});

$('clear-emergency').addEventListener('click', () => {
  if (session && bannerGroup) session.request({ emergencyClear: { groupId: bannerGroup } });
});
$('silence-alarm').addEventListener('click', () => {
  for (const e of emergencies.values()) silenced.add(e.groupId + ':' + e.declaredAtUs);
  renderEmergency();
});

setState('login');
if (typeof WebTransport === 'undefined' || typeof AudioDecoder === 'undefined') {
  showError('This browser lacks WebTransport or WebCodecs; use a current Chromium-based browser');
  $('login-button').disabled = true;
}
