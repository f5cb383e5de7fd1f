// A tiny protobuf codec for the control stream (proto/ptt.proto, voice.md §2).
//
// The page's Content-Security-Policy forbids eval and new Function, which
// rules out protobuf.js; the console needs a dozen messages, so a schema
// table and ~150 lines of varint code do the job.
//
// Covered messages (field numbers MUST match proto/ptt.proto; a field added
// there is simply skipped here until it is added to SCHEMA):
//   client → relay: ClientMessage {hello, join_group, leave_group, floor_request,
//     floor_release, alert, alert_ack, emergency_clear, private_call_setup,
//     private_call_accept, private_call_reject, private_call_end, ping};
//   relay → client: ServerMessage {hello_ok, join_ok, leave_ok,
//     floor_granted, floor_queued, floor_denied, floor_revoked, floor_taken,
//     floor_idle, queue_position_update, alert, alert_tally,
//     emergency_state, location_report, status_message, private_call_setup,
//     private_call_accept, private_call_reject, private_call_end, presence,
//     regrouped, pong, error, going_away, ack};
//   and every message these contain.
// Other ServerMessage bodies (quality reports…) decode to a message whose
// `body` is undefined; the console ignores them.
//
// Field names are the proto's snake_case names in camelCase. Encoding follows
// proto3 as prost does: fields in number order, scalars at their default
// value left out (except `optional` ones), messages written even when empty.
// Decoding fills absent scalars with their defaults, absent messages and
// `optional` scalars with undefined, absent repeated fields with [].
// uint64 values are JavaScript numbers: exact up to 2^53, which holds every
// id the page compares (its own request counter) and any Unix µs time.

/** Largest control message body either side may send (voice.md §2.3). */
export const MAX_MESSAGE_SIZE = 65536;

// Schema: message name → [field number, name, type, oneof name?]. A type
// ending in `[]` is repeated, in `?` is a proto3 `optional` scalar; any
// other type not listed in SCALARS is a message of this table.
const SCHEMA = {
  ClientMessage: [
    [1, 'requestId', 'uint64'],
    [10, 'hello', 'Hello', 'body'],
    [11, 'joinGroup', 'JoinGroup', 'body'],
    [12, 'leaveGroup', 'LeaveGroup', 'body'],
    [13, 'floorRequest', 'FloorRequest', 'body'],
    [14, 'floorRelease', 'FloorRelease', 'body'],
    [15, 'alert', 'Alert', 'body'],
    [16, 'alertAck', 'AlertAck', 'body'],
    [18, 'emergencyClear', 'EmergencyClear', 'body'],
    [21, 'privateCallSetup', 'PrivateCallSetup', 'body'],
    [22, 'privateCallAccept', 'PrivateCallAccept', 'body'],
    [23, 'privateCallReject', 'PrivateCallReject', 'body'],
    [24, 'privateCallEnd', 'PrivateCallEnd', 'body'],
    [25, 'ping', 'Ping', 'body'],
  ],
  Hello: [
    [1, 'protocolVersion', 'uint32'],
    [2, 'terminalId', 'uint32'],
    [3, 'secret', 'bytes'],
    [4, 'clientVersion', 'string'],
    [5, 'capabilities', 'Capabilities'],
    [6, 'resumeToken', 'bytes'],
  ],
  Capabilities: [
    [1, 'datagrams', 'bool'],
    [2, 'maxDatagramSize', 'uint32'],
    [3, 'privateCalls', 'bool'],
    [4, 'location', 'bool'],
  ],
  FloorRequest: [
    [1, 'groupId', 'uint32'],
    [2, 'priority', 'enum'],
    [3, 'kind', 'enum'],
  ],
  FloorRelease: [
    [1, 'groupId', 'uint32'],
    [2, 'burstId', 'uint32'],
    [3, 'lastSequence', 'uint32?'],
  ],
  EmergencyClear: [[1, 'groupId', 'uint32']],
  JoinGroup: [[1, 'groupId', 'uint32']],
  LeaveGroup: [[1, 'groupId', 'uint32']],
  Ping: [[1, 'clientSendTimeUs', 'uint64']],

  ServerMessage: [
    [1, 'requestId', 'uint64'],
    [10, 'helloOk', 'HelloOk', 'body'],
    [11, 'joinOk', 'JoinOk', 'body'],
    [12, 'leaveOk', 'LeaveOk', 'body'],
    [13, 'floorGranted', 'FloorGranted', 'body'],
    [14, 'floorQueued', 'FloorQueued', 'body'],
    [15, 'floorDenied', 'FloorDenied', 'body'],
    [16, 'floorRevoked', 'FloorRevoked', 'body'],
    [17, 'floorTaken', 'FloorTaken', 'body'],
    [18, 'floorIdle', 'FloorIdle', 'body'],
    [19, 'queuePositionUpdate', 'QueuePositionUpdate', 'body'],
    [20, 'alert', 'Alert', 'body'],
    [21, 'alertTally', 'AlertTally', 'body'],
    [22, 'emergencyState', 'EmergencyState', 'body'],
    [23, 'locationReport', 'LocationReport', 'body'],
    [24, 'statusMessage', 'StatusMessage', 'body'],
    [25, 'privateCallSetup', 'PrivateCallSetup', 'body'],
    [26, 'privateCallAccept', 'PrivateCallAccept', 'body'],
    [27, 'privateCallReject', 'PrivateCallReject', 'body'],
    [28, 'privateCallEnd', 'PrivateCallEnd', 'body'],
    [29, 'presence', 'Presence', 'body'],
    [30, 'regrouped', 'Regrouped', 'body'],
    [31, 'pong', 'Pong', 'body'],
    [32, 'error', 'Error', 'body'],
    [33, 'goingAway', 'GoingAway', 'body'],
    [34, 'ack', 'Ack', 'body'],
  ],
  HelloOk: [
    [1, 'sessionId', 'uint64'],
    [2, 'serverVersion', 'string'],
    [3, 'protocolVersion', 'uint32'],
    [4, 'terminalId', 'uint32'],
    [5, 'terminalName', 'string'],
    [6, 'groups', 'GroupInfo[]'],
    [7, 'maxDatagramSize', 'uint32'],
    [8, 'datagrams', 'bool'],
    [9, 'serverTimeUs', 'uint64'],
    [10, 'pingIntervalMs', 'uint32'],
    [11, 'statusCodes', 'StatusCodeInfo[]'],
    [12, 'resumeToken', 'bytes'],
  ],
  StatusCodeInfo: [
    [1, 'code', 'uint32'],
    [2, 'label', 'string'],
  ],
  GroupRights: [
    [1, 'listen', 'bool'],
    [2, 'talk', 'bool'],
    [3, 'maxPriority', 'enum'],
    [4, 'preempt', 'bool'],
    [5, 'broadcast', 'bool'],
    [6, 'dispatch', 'bool'],
  ],
  GroupInfo: [
    [1, 'groupId', 'uint32'],
    [2, 'name', 'string'],
    [3, 'rights', 'GroupRights'],
    [4, 'joined', 'bool'],
    [5, 'dynamic', 'bool'],
  ],
  FloorGranted: [
    [1, 'groupId', 'uint32'],
    [2, 'burstId', 'uint32'],
    [3, 'talkLimitMs', 'uint32'],
    [4, 'priority', 'enum'],
    [5, 'kind', 'enum'],
  ],
  FloorQueued: [
    [1, 'groupId', 'uint32'],
    [2, 'position', 'uint32'],
    [3, 'queueLength', 'uint32'],
  ],
  FloorDenied: [
    [1, 'groupId', 'uint32'],
    [2, 'reason', 'enum'],
  ],
  FloorRevoked: [
    [1, 'groupId', 'uint32'],
    [2, 'burstId', 'uint32'],
    [3, 'reason', 'enum'],
    [4, 'graceMs', 'uint32'],
  ],
  FloorTaken: [
    [1, 'groupId', 'uint32'],
    [2, 'holderTerminalId', 'uint32'],
    [3, 'holderName', 'string'],
    [4, 'priority', 'enum'],
    [5, 'burstId', 'uint32'],
    [6, 'kind', 'enum'],
  ],
  FloorIdle: [
    [1, 'groupId', 'uint32'],
    [2, 'reason', 'enum'],
    [3, 'burstId', 'uint32'],
  ],
  QueuePositionUpdate: [
    [1, 'groupId', 'uint32'],
    [2, 'position', 'uint32'],
    [3, 'queueLength', 'uint32'],
  ],
  EmergencyState: [
    [1, 'groupId', 'uint32'],
    [2, 'active', 'bool'],
    [3, 'declaredBy', 'uint32'],
    [4, 'declaredByName', 'string'],
    [5, 'declaredAtUs', 'uint64'],
    [6, 'clearedBy', 'uint32'],
    [7, 'text', 'string'],
  ],
  LocationReport: [
    [1, 'terminalId', 'uint32'],
    [2, 'latitudeDeg', 'double'],
    [3, 'longitudeDeg', 'double'],
    [4, 'accuracyM', 'float'],
    [5, 'headingDeg', 'float?'],
    [6, 'speedMps', 'float?'],
    [7, 'timestampUs', 'uint64'],
  ],
  Regrouped: [
    [1, 'groupId', 'uint32'],
    [2, 'terminalId', 'uint32'],
    [3, 'change', 'enum'],
    [4, 'reason', 'enum'],
    [5, 'group', 'GroupInfo'],
    [6, 'zone', 'string'],
  ],
  Pong: [
    [1, 'clientSendTimeUs', 'uint64'],
    [2, 'serverTimeUs', 'uint64'],
  ],
  Error: [
    [1, 'reason', 'enum'],
    [2, 'detail', 'string'],
  ],
  GoingAway: [
    [1, 'reason', 'enum'],
    [2, 'reconnectAfterMs', 'uint32'],
    [3, 'detail', 'string'],
  ],
  Ack: [],
  JoinOk: [
    [1, 'group', 'GroupInfo'],
    [2, 'floor', 'FloorTaken'],
    [3, 'emergency', 'EmergencyState'],
  ],
  LeaveOk: [[1, 'groupId', 'uint32']],
  Alert: [
    [1, 'alertId', 'uint64'],
    [2, 'fromTerminalId', 'uint32'],
    [3, 'fromName', 'string'],
    [4, 'text', 'string'],
    [5, 'targetGroupIds', 'uint32[]'],
    [6, 'requiresAck', 'bool'],
    [7, 'sentAtUs', 'uint64'],
  ],
  AlertAck: [
    [1, 'alertId', 'uint64'],
    [2, 'kind', 'enum'],
    [3, 'statusCode', 'uint32?'],
  ],
  AlertAckEntry: [
    [1, 'terminalId', 'uint32'],
    [2, 'name', 'string'],
    [3, 'kind', 'enum'],
    [4, 'statusCode', 'uint32?'],
    [5, 'atUs', 'uint64'],
  ],
  AlertTallyPart: [
    [1, 'groupId', 'uint32'],
    [2, 'name', 'string'],
    [3, 'targets', 'uint32'],
    [4, 'delivered', 'uint32'],
    [5, 'responding', 'uint32'],
    [6, 'unable', 'uint32'],
  ],
  AlertTally: [
    [1, 'alertId', 'uint64'],
    [2, 'targets', 'uint32'],
    [3, 'delivered', 'uint32'],
    [4, 'responding', 'uint32'],
    [5, 'unable', 'uint32'],
    [6, 'entries', 'AlertAckEntry[]'],
    [7, 'groups', 'AlertTallyPart[]'],
    [8, 'organisations', 'AlertTallyPart[]'],
  ],
  StatusMessage: [
    [1, 'fromTerminalId', 'uint32'],
    [2, 'code', 'uint32'],
    [3, 'text', 'string'],
    [4, 'terminalId', 'uint32', 'target'],
    [5, 'groupId', 'uint32', 'target'],
    [6, 'dispatchers', 'bool', 'target'],
  ],
  PrivateCallSetup: [
    [1, 'callId', 'uint64'],
    [2, 'callerTerminalId', 'uint32'],
    [3, 'callerName', 'string'],
    [4, 'calleeTerminalId', 'uint32'],
    [5, 'groupId', 'uint32'],
    [6, 'emergency', 'bool'],
  ],
  PrivateCallAccept: [
    [1, 'callId', 'uint64'],
    [2, 'groupId', 'uint32'],
  ],
  PrivateCallReject: [
    [1, 'callId', 'uint64'],
    [2, 'reason', 'enum'],
  ],
  PrivateCallEnd: [
    [1, 'callId', 'uint64'],
    [2, 'reason', 'enum'],
  ],
  Presence: [
    [1, 'terminalId', 'uint32'],
    [2, 'name', 'string'],
    [3, 'state', 'enum'],
    [4, 'groupId', 'uint32'],
  ],
};

// Scalar type → [wire type, default value].
const SCALARS = {
  uint32: [0, 0],
  uint64: [0, 0],
  enum: [0, 0],
  bool: [0, false],
  double: [1, 0],
  float: [5, 0],
  string: [2, ''],
  bytes: [2, new Uint8Array(0)],
};

// ---- enums the console sends or shows --------------------------------------

/** Priority values for FloorRequest (ptt.proto `Priority`). */
export const Priority = Object.freeze({ NORMAL: 1, ELEVATED: 2, DISPATCHER: 3, EMERGENCY: 4 });
/** FloorKind values for FloorRequest (ptt.proto `FloorKind`). */
export const FloorKind = Object.freeze({ NORMAL: 1, BROADCAST: 2, EMERGENCY: 3 });
/** ErrorReason values the console reacts to (ptt.proto `ErrorReason`). */
export const ErrorReason = Object.freeze({ AUTH_FAILED: 3, RATE_LIMITED: 12, TERMINAL_DISABLED: 16 });
/** RegroupChange values (ptt.proto `RegroupChange`). */
export const RegroupChange = Object.freeze({ ADDED: 1, REMOVED: 2 });
/** AlertAckKind values (ptt.proto `AlertAckKind`); UNSPECIFIED: not answered yet. */
export const AlertAckKind = Object.freeze({ UNSPECIFIED: 0, DELIVERED: 1, RESPONDING: 2, UNABLE: 3 });
/** PresenceState values (ptt.proto `PresenceState`). */
export const PresenceState = Object.freeze({ ONLINE: 1, OFFLINE: 2, JOINED: 3, LEFT: 4 });
/** PrivateCallRejectReason.DECLINED, what the console answers a call it refuses. */
export const PrivateCallRejectReason = Object.freeze({ DECLINED: 1 });
/** PrivateCallEndReason.HANGUP, what the console sends when it hangs up. */
export const PrivateCallEndReason = Object.freeze({ HANGUP: 1 });

// Readable names of the reason enums, indexed by value; for display only.
const REASON_TEXT = {
  ErrorReason: ['unspecified', 'malformed', 'unsupported version', 'authentication failed',
    'not authenticated', 'already authenticated', 'unknown group', 'not a member', 'forbidden',
    'unknown terminal', 'unknown alert', 'unknown call', 'rate limited', 'unsupported request',
    'message too large', 'internal server error', 'terminal disabled'],
  FloorDenyReason: ['no reason given', 'not a member', 'listen only', 'queue full',
    'broadcast in progress', 'priority not allowed', 'queue expired', 'unknown group',
    'already requested', 'rate limited'],
  FloorRevokeReason: ['no reason given', 'pre-empted', 'talk limit reached', 'no voice sent',
    'removed from the group', 'ended by a dispatcher'],
  GoingAwayReason: ['no reason given', 'server shutting down', 'server restarting',
    'logged in elsewhere', 'credentials revoked', 'policy'],
  PrivateCallRejectReason: ['no reason given', 'declined', 'busy', 'no answer', 'offline',
    'not allowed', 'cannot take private calls', 'its relay cannot be reached'],
  PrivateCallEndReason: ['no reason given', 'hung up', 'nobody talked for too long',
    'connection lost', 'pre-empted'],
  RegroupReason: ['', 'patrol near', 'patrol moved on', 'backup call', 'emergency cleared',
    'dispatcher', 'administration'],
};

/**
 * Readable text of a reason enum value, e.g. reasonText('FloorDenyReason', 3)
 * → "queue full"; unknown values read as unspecified, as ptt.proto asks.
 */
export function reasonText(enumName, value) {
  const names = REASON_TEXT[enumName];
  return names[value] || names[0];
}

// ---- encoding --------------------------------------------------------------

// Growable byte buffer. Varints are written with arithmetic, not bit
// operators, so values up to 2^53 survive (bit operators truncate to 32 bits).
class Writer {
  constructor() {
    this.buf = new Uint8Array(64);
    this.len = 0;
  }

  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }

  varint(value) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError('cannot encode varint ' + value);
    this.reserve(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  bytes(b) {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  fixed(size, write) {
    this.reserve(size);
    write(new DataView(this.buf.buffer, this.len, size));
    this.len += size;
  }

  finish() {
    return this.buf.slice(0, this.len);
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function parseType(type) {
  const repeated = type.endsWith('[]');
  const optional = type.endsWith('?');
  const base = repeated ? type.slice(0, -2) : optional ? type.slice(0, -1) : type;
  return { base, repeated, optional, scalar: SCALARS[base] };
}

function writeScalar(w, base, value) {
  switch (base) {
    case 'bool': w.varint(value ? 1 : 0); break;
    case 'double': w.fixed(8, (v) => v.setFloat64(0, value, true)); break;
    case 'float': w.fixed(4, (v) => v.setFloat32(0, value, true)); break;
    case 'string': {
      const b = utf8Encoder.encode(value);
      w.varint(b.length);
      w.bytes(b);
      break;
    }
    case 'bytes': w.varint(value.length); w.bytes(value); break;
    default: w.varint(value);
  }
}

function isDefault(base, value) {
  if (base === 'string' || base === 'bytes') return value.length === 0;
  return !value;
}

function encodeInto(w, name, obj) {
  const fields = SCHEMA[name];
  if (!fields) throw new Error('proto.js has no schema for ' + name);
  for (const [number, field, type] of fields) {
    const value = obj[field];
    if (value === undefined || value === null) continue;
    const t = parseType(type);
    if (t.scalar) {
      const wire = t.scalar[0];
      if (t.repeated) {
        if (value.length === 0) continue;
        if (wire === 2) {
          for (const v of value) { w.varint(number * 8 + 2); writeScalar(w, t.base, v); }
        } else {
          // Packed, as proto3 writes repeated numeric fields.
          const inner = new Writer();
          for (const v of value) writeScalar(inner, t.base, v);
          w.varint(number * 8 + 2);
          w.varint(inner.len);
          w.bytes(inner.finish());
        }
        continue;
      }
      if (!t.optional && isDefault(t.base, value)) continue;
      w.varint(number * 8 + wire);
      writeScalar(w, t.base, value);
    } else {
      for (const v of t.repeated ? value : [value]) {
        const inner = encode(t.base, v);
        w.varint(number * 8 + 2);
        w.varint(inner.length);
        w.bytes(inner);
      }
    }
  }
}

/**
 * Encodes `obj` as protobuf message `name` of SCHEMA. Exported so tests can
 * compare single messages with known bytes.
 */
export function encode(name, obj) {
  const w = new Writer();
  encodeInto(w, name, obj);
  return w.finish();
}

/**
 * Encodes a ClientMessage and prefixes it with its length as a varint: one
 * frame of the control stream (voice.md §2.2), ready to write.
 * `msg` is e.g. {requestId: 7, floorRequest: {groupId: 3, kind: FloorKind.NORMAL}}.
 */
export function encodeClientFrame(msg) {
  const body = encode('ClientMessage', msg);
  if (body.length > MAX_MESSAGE_SIZE) throw new Error('control message of ' + body.length + ' bytes exceeds 64 KiB');
  const w = new Writer();
  w.varint(body.length);
  w.bytes(body);
  return w.finish();
}

// ---- decoding --------------------------------------------------------------

/** A message that is not valid protobuf (or breaks the framing rules). */
export class DecodeError extends Error {}

class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.pos = 0;
  }

  varint() {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.b.length) throw new DecodeError('truncated varint');
      const byte = this.b[this.pos++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
    throw new DecodeError('varint longer than 10 bytes');
  }

  take(n) {
    if (n > this.b.length - this.pos) throw new DecodeError('truncated field');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(wire) {
    switch (wire) {
      case 0: this.varint(); break;
      case 1: this.take(8); break;
      case 2: this.take(this.varint()); break;
      case 5: this.take(4); break;
      default: throw new DecodeError('unsupported wire type ' + wire);
    }
  }
}

function readScalar(r, base) {
  switch (base) {
    case 'bool': return r.varint() !== 0;
    case 'double': {
      const b = r.take(8);
      return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
    }
    case 'float': {
      const b = r.take(4);
      return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
    }
    case 'string':
      try {
        return utf8Decoder.decode(r.take(r.varint()));
      } catch (e) {
        if (e instanceof DecodeError) throw e;
        throw new DecodeError('string field is not UTF-8');
      }
    case 'bytes': return r.take(r.varint()).slice();
    default: return r.varint();
  }
}

/**
 * Decodes protobuf message `name` of SCHEMA from `bytes`. Unknown fields are
 * skipped (voice.md §5); for a oneof, the field read sets `msg[oneof]` to its
 * name, e.g. `msg.body === 'floorGranted'`. Throws DecodeError.
 */
export function decode(name, bytes) {
  const fields = SCHEMA[name];
  const byNumber = new Map();
  const msg = {};
  for (const [number, field, type, oneof] of fields) {
    const t = parseType(type);
    byNumber.set(number, { field, t, oneof });
    if (t.repeated) msg[field] = [];
    else if (t.scalar && !t.optional) msg[field] = t.scalar[1];
  }
  const r = new Reader(bytes);
  while (r.pos < bytes.length) {
    const key = r.varint();
    const number = Math.floor(key / 8);
    const wire = key % 8;
    const f = byNumber.get(number);
    if (!f) {
      r.skip(wire);
      continue;
    }
    const { field, t, oneof } = f;
    if (t.scalar) {
      const expected = t.scalar[0];
      if (t.repeated && wire === 2 && expected !== 2) {
        const packed = new Reader(r.take(r.varint()));
        while (packed.pos < packed.b.length) msg[field].push(readScalar(packed, t.base));
        continue;
      }
      if (wire !== expected) throw new DecodeError(name + '.' + field + ': wire type ' + wire);
      const v = readScalar(r, t.base);
      if (t.repeated) msg[field].push(v);
      else msg[field] = v;
    } else {
      if (wire !== 2) throw new DecodeError(name + '.' + field + ': wire type ' + wire);
      const v = decode(t.base, r.take(r.varint()));
      if (t.repeated) msg[field].push(v);
      else msg[field] = v;
    }
    if (oneof) msg[oneof] = field;
  }
  return msg;
}

/**
 * Splits the relay's side of the control stream into message bodies (decode
 * each with `decode('ServerMessage', body)`; a body that does not decode
 * leaves the framing intact, voice.md §2.4). The stream arrives in arbitrary
 * chunks; `push` buffers them and returns every body completed so far. A
 * length above 64 KiB or a varint over 10 bytes throws DecodeError: the
 * stream cannot be resynchronised (voice.md §2.3), so the caller closes the
 * connection.
 */
export class FrameReader {
  constructor() {
    this.buf = new Uint8Array(0);
  }

  push(chunk) {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    const bodies = [];
    let pos = 0;
    for (;;) {
      const r = new Reader(joined.subarray(pos));
      let len;
      try {
        len = r.varint();
      } catch (e) {
        if (r.pos >= 10) throw e; // a complete but over-long varint
        break; // the prefix is not complete yet
      }
      if (len > MAX_MESSAGE_SIZE) throw new DecodeError('control message of ' + len + ' bytes exceeds 64 KiB');
      if (joined.length - pos - r.pos < len) break;
      const start = pos + r.pos;
      bodies.push(joined.slice(start, start + len));
      pos = start + len;
    }
    this.buf = joined.slice(pos);
    return bodies;
  }
}
