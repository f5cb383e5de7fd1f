// Voice for the dispatcher console: the voice datagram of proto/voice.md §3,
// Opus capture and encoding (VoiceSender), and decoding, jitter buffering
// and playout per group (VoicePlayout), plus the emergency alarm tone.
//
// Audio path, talking: microphone → AudioContext at 16 kHz (Chromium
// resamples the microphone into it) → AudioWorklet (worklet.js) cutting 20 ms
// frames → WebCodecs AudioEncoder (Opus, mono, VOIP, in-band FEC, 24 kbit/s)
// → one voice datagram per packet. 16 kHz mono 20 ms is the terminals'
// profile (voice.md §3.2). A worklet rather than MediaStreamTrackProcessor:
// it is available in every browser with WebCodecs, and it stamps each frame
// with the audio clock of its first sample.
//
// Listening: datagram → header and Opus structure checked → per-group jitter
// buffer (frames held by sequence until 60 ms after the burst's first frame
// arrived, released in order; late ones dropped, gaps left silent) →
// WebCodecs AudioDecoder of the group → AudioBufferSourceNode scheduled at
// the frame's slot → the group's GainNode (mute, volume) → speakers.

/** Size of the fixed voice header (voice.md §3.1). */
export const HEADER_LEN = 24;
/** Largest voice datagram anyone may send (voice.md §3.2). */
export const MAX_DATAGRAM_SIZE = 1100;
/** Datagram kinds (voice.md §3.1). */
export const Kind = Object.freeze({ VOICE: 0, PROBE: 1 });

const VERSION = 1;
const LAST_FRAME = 0x01;
const FRAME_S = 0.02; // 20 ms Opus frames, both ways
const CAPTURE_RATE = 16000;
const JITTER_TARGET_S = 0.06; // playout delay after a burst's first frame
// A frame goes to the decoder as soon as it and every frame before it are
// in, however early: its audio is then scheduled for its slot, so a busy
// page has the whole jitter buffer to decode in. A missing frame is waited
// for until this long before its slot, then counted lost.
const GIVE_UP_S = 0.02;
const MAX_CATCH_UP_S = 0.2; // most delay a burst may add when the page falls behind
const CATCH_UP_MARGIN_S = 0.01; // added on top of the lateness when it does
const PUMP_MS = 10;
const MOUTH_TO_EAR_KEPT = 3000; // one minute of one talker's frames
const STALL_MS = 250; // voice.md §3.4: probe once when a burst stops this long
const REMEMBERED_BURSTS = 4; // ended bursts per group whose stragglers are dropped

// ---- the datagram ----------------------------------------------------------

/**
 * Builds one voice datagram: the 24-byte header of voice.md §3.1 followed by
 * `payload` (one Opus packet; empty for a probe). The talker id is always
 * 0: the relay stamps the authenticated sender.
 */
export function encodeDatagram({ kind = Kind.VOICE, last = false, groupId = 0, burstId = 0, sequence = 0, timestampUs = 0 }, payload) {
  const out = new Uint8Array(HEADER_LEN + payload.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, (VERSION << 4) | kind);
  v.setUint8(1, last ? LAST_FRAME : 0);
  v.setUint32(2, groupId);
  v.setUint32(6, 0);
  v.setUint32(10, burstId);
  v.setUint16(14, sequence & 0xffff);
  v.setBigUint64(16, BigInt(Math.max(0, Math.round(timestampUs))));
  out.set(payload, HEADER_LEN);
  return out;
}

/**
 * A keep-alive / probe datagram (kind 1, every field 0, no payload;
 * voice.md §3.4): keeps the connection and NAT bindings alive while idle and
 * makes a restarted relay answer with a reset at once.
 */
export function encodeProbe() {
  return encodeDatagram({ kind: Kind.PROBE }, new Uint8Array(0));
}

/**
 * Reads a received datagram; returns null when it breaks a rule of voice.md
 * §3.2 (size, version, kind, Opus structure), so the caller drops and
 * counts it. The payload is a view into `bytes`.
 */
export function parseDatagram(bytes, maxSize = MAX_DATAGRAM_SIZE) {
  if (bytes.length < HEADER_LEN || bytes.length > Math.min(maxSize, MAX_DATAGRAM_SIZE)) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const b0 = v.getUint8(0);
  const kind = b0 & 0x0f;
  if (b0 >> 4 !== VERSION || (kind !== Kind.VOICE && kind !== Kind.PROBE)) return null;
  const payload = bytes.subarray(HEADER_LEN);
  if (kind === Kind.VOICE && !opusPacketValid(payload)) return null;
  return {
    kind,
    last: (v.getUint8(1) & LAST_FRAME) !== 0,
    groupId: v.getUint32(2),
    talkerId: v.getUint32(6),
    burstId: v.getUint32(10),
    sequence: v.getUint16(14),
    timestampUs: Number(v.getBigUint64(16)),
    payload,
  };
}

// Reads an Opus frame length (RFC 6716 §3.2.1) at `at`: [length, bytes used],
// or null if the packet ends inside it.
function frameLength(p, at) {
  if (at >= p.length) return null;
  if (p[at] < 252) return [p[at], 1];
  if (at + 1 >= p.length) return null;
  return [p[at + 1] * 4 + p[at], 2];
}

/**
 * True if `p` is a structurally valid Opus packet (RFC 6716 §3.4 rules
 * R1–R7, as the relay checks in crates/ptt-proto/src/opus.rs). A packet that
 * breaks them would make WebCodecs' decoder fail and close.
 */
export function opusPacketValid(p) {
  if (p.length === 0) return false; // R1
  const MAX_FRAME = 1275;
  const rest = p.length - 1;
  switch (p[0] & 0x03) {
    case 0: return rest <= MAX_FRAME;
    case 1: return rest % 2 === 0 && rest / 2 <= MAX_FRAME;
    case 2: {
      const first = frameLength(p, 1);
      if (!first) return false;
      const second = rest - first[1] - first[0];
      return second >= 0 && first[0] <= MAX_FRAME && second <= MAX_FRAME;
    }
    default: {
      if (rest < 1) return false;
      const countByte = p[1];
      const count = countByte & 0x3f;
      if (count === 0) return false;
      const config = p[0] >> 3;
      const frameSamples = config < 12 ? [480, 960, 1920, 2880][config & 3]
        : config < 16 ? [480, 960][config & 1] : [120, 240, 480, 960][config & 3];
      if (count * frameSamples > 5760) return false; // R5: at most 120 ms
      let at = 2;
      let padding = 0;
      if (countByte & 0x40) {
        for (;;) {
          if (at >= p.length) return false;
          const b = p[at++];
          padding += b === 255 ? 254 : b;
          if (b !== 255) break;
        }
      }
      const data = p.length - at - padding;
      if (data < 0) return false;
      if (!(countByte & 0x80)) return data % count === 0 && data / count <= MAX_FRAME;
      let sum = 0;
      let used = 0;
      for (let i = 0; i < count - 1; i++) {
        const len = frameLength(p, at + used);
        if (!len || len[0] > MAX_FRAME) return false;
        used += len[1];
        sum += len[0];
      }
      const last = data - used - sum;
      return last >= 0 && last <= MAX_FRAME;
    }
  }
}

/**
 * Serial-number difference of two 16-bit sequence numbers (voice.md §3.3):
 * > 0 if `seq` is newer than `top`, < 0 if older; -32768 (ambiguous) counts
 * as older.
 */
export function seqDelta(seq, top) {
  const d = (seq - top) & 0xffff;
  return d >= 0x8000 ? d - 0x10000 : d;
}

function unixMicros() {
  return (performance.timeOrigin + performance.now()) * 1000;
}

// ---- talking -----------------------------------------------------------------

function encoderConfig(sampleRate) {
  return {
    codec: 'opus',
    sampleRate,
    numberOfChannels: 1,
    bitrate: 24000,
    opus: { frameDuration: FRAME_S * 1e6, complexity: 5, useinbandfec: true, packetlossperc: 5, application: 'voip', signal: 'voice' },
  };
}

/**
 * The microphone and the Opus encoder. `open()` asks for the microphone
 * once (at log-in, so the first talk does not wait for the permission
 * prompt); `start()` sends one voice datagram per 20 ms through `send` until
 * `stop()` (release) or `abort()` (floor revoked).
 */
export class VoiceSender {
  /**
   * @param {object} hooks `send(datagram)`, `onFrameSent()` per voice frame
   *   sent, `onError(message)` for anything that stops voice from going out.
   */
  constructor({ send, onFrameSent, onError }) {
    this.send = send;
    this.onFrameSent = onFrameSent;
    this.onError = onError;
    this.opening = null;
    this.burst = null;
  }

  /** Opens the microphone, capture context and encoder; idempotent. */
  open() {
    if (!this.opening) {
      this.opening = this.openOnce().catch((e) => {
        this.opening = null; // let the next talk ask again
        this.close();
        throw e;
      });
    }
    return this.opening;
  }

  async openOnce() {
    if (typeof AudioEncoder === 'undefined') throw new Error('this browser has no WebCodecs audio encoder');
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    let source;
    this.ctx = new AudioContext({ sampleRate: CAPTURE_RATE, latencyHint: 'interactive' });
    try {
      source = this.ctx.createMediaStreamSource(this.stream);
    } catch (e) {
      // Browsers that cannot resample a microphone into a 16 kHz context
      // (Firefox) capture at the device rate; Opus codes any of them.
      await this.ctx.close();
      this.ctx = new AudioContext({ latencyHint: 'interactive' });
      source = this.ctx.createMediaStreamSource(this.stream);
    }
    this.config = encoderConfig(this.ctx.sampleRate);
    const { supported } = await AudioEncoder.isConfigSupported(this.config);
    if (!supported) throw new Error('this browser cannot encode Opus at ' + this.ctx.sampleRate + ' Hz');
    this.encoder = new AudioEncoder({
      output: (chunk) => this.onEncoded(chunk),
      error: (e) => {
        this.onError('Opus encoder failed: ' + e.message);
        this.close();
      },
    });
    await this.ctx.audioWorklet.addModule('/console/worklet.js');
    this.node = new AudioWorkletNode(this.ctx, 'ptt-capture', {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 1,
      channelCountMode: 'explicit',
      processorOptions: { frameSamples: Math.round(this.ctx.sampleRate * FRAME_S) },
    });
    this.node.port.onmessage = (e) => this.onCaptured(e.data);
    source.connect(this.node);
    // Connected to the destination so the graph pulls it; it outputs silence.
    this.node.connect(this.ctx.destination);
    if (this.ctx.state !== 'running') await this.ctx.resume();
  }

  /** Sample rate the microphone is captured and encoded at (Hz). */
  get sampleRate() {
    return this.ctx ? this.ctx.sampleRate : null;
  }

  /**
   * Starts a burst: from now on each 20 ms of microphone becomes a datagram
   * for `groupId` (0: all-call) with `burstId` from FloorGranted, sequence
   * from 0 (voice.md §3.1). A fresh encoder state per burst, so a listener's
   * decoder never depends on an earlier burst.
   */
  start({ groupId, burstId, maxSize }) {
    this.encoder.reset();
    this.encoder.configure(this.config);
    this.burst = { groupId, burstId, maxSize, sequence: 0, lastToc: null };
    this.node.port.postMessage({ active: true });
  }

  /**
   * Ends the burst after the floor was released: stops capture, sends what
   * the encoder still holds, then a final one-byte Opus packet (the TOC alone:
   * a zero-length frame, which decoders treat as a lost frame) carrying the
   * `last` flag. Resolves to the sequence number of that final datagram, for
   * FloorRelease.last_sequence, or undefined if nothing was sent.
   */
  async stop() {
    const burst = this.burst;
    if (!burst) return undefined;
    this.node.port.postMessage({ active: false });
    try {
      await this.encoder.flush();
    } catch (e) {
      this.onError('Opus encoder failed at the end of a burst: ' + e.message);
    }
    this.burst = null;
    if (burst.lastToc === null) return undefined;
    const sequence = burst.sequence;
    this.send(encodeDatagram({
      last: true, groupId: burst.groupId, burstId: burst.burstId, sequence, timestampUs: unixMicros(),
    }, new Uint8Array([burst.lastToc & 0xfc])));
    return sequence;
  }

  /** Stops a burst at once, discarding queued audio (the floor was revoked). */
  abort() {
    if (!this.burst) return;
    this.burst = null;
    this.node.port.postMessage({ active: false });
    this.encoder.reset();
  }

  /** Releases the microphone and the capture context (end of session). */
  close() {
    this.burst = null;
    if (this.encoder && this.encoder.state !== 'closed') this.encoder.close();
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    if (this.ctx && this.ctx.state !== 'closed') this.ctx.close();
    this.encoder = this.stream = this.ctx = this.node = null;
    this.opening = null;
  }

  onCaptured({ samples, time }) {
    if (!this.burst || !this.encoder) return;
    // The frame's first sample was captured (now − its age on the audio clock).
    const ageUs = Math.max(0, (this.ctx.currentTime - time) * 1e6);
    const data = new AudioData({
      format: 'f32-planar',
      sampleRate: this.ctx.sampleRate,
      numberOfFrames: samples.length,
      numberOfChannels: 1,
      timestamp: Math.round(unixMicros() - ageUs),
      data: samples,
    });
    try {
      this.encoder.encode(data);
    } finally {
      data.close();
    }
  }

  onEncoded(chunk) {
    const burst = this.burst;
    if (!burst || chunk.byteLength === 0) return;
    const payload = new Uint8Array(chunk.byteLength);
    chunk.copyTo(payload);
    const datagram = encodeDatagram({
      groupId: burst.groupId, burstId: burst.burstId, sequence: burst.sequence, timestampUs: chunk.timestamp,
    }, payload);
    if (datagram.length > burst.maxSize) {
      this.onError('an Opus packet of ' + payload.length + ' bytes exceeds the datagram limit; frame dropped');
      return;
    }
    this.send(datagram);
    burst.lastToc = payload[0];
    burst.sequence = (burst.sequence + 1) & 0xffff;
    this.onFrameSent();
  }
}

// ---- listening -----------------------------------------------------------------

/**
 * Plays every joined group at once. Each group has a GainNode (mute and
 * volume), an AudioDecoder made at its first voice, and the jitter buffer of
 * its current burst. Statistics go straight into the objects the caller
 * hands in (the page's window.pttConsole), so tests read live values.
 */
export class VoicePlayout {
  /**
   * @param {object} counters connection-wide counters to update:
   *   `malformed` (datagrams dropped as invalid), `unknownGroup` (voice for
   *   a group not joined), `probesSent`.
   * @param {object} hooks `sendProbe()` (stall probe, voice.md §3.4),
   *   `onError(message)`.
   */
  constructor(counters, { sendProbe, onError }) {
    this.counters = counters;
    this.sendProbe = sendProbe;
    this.onError = onError;
    this.ctx = new AudioContext({ latencyHint: 'interactive' });
    this.groups = new Map(); // group id → { gain, stats, decoder, slots, stream, ended, playEnd }
    this.maxSize = MAX_DATAGRAM_SIZE;
    this.alarm = null;
    this.timer = setInterval(() => this.pump(), PUMP_MS);
  }

  /** Resumes the audio output; call from a user gesture (autoplay policy). */
  resume() {
    return this.ctx.state === 'running' ? Promise.resolve() : this.ctx.resume();
  }

  /**
   * Starts playing group `id`; `stats` is its object in window.pttConsole,
   * whose framesDecoded, framesDropped (and why, in `dropped`), framesLost,
   * catchUpMs and peakLevel this keeps.
   */
  addGroup(id, stats) {
    if (this.groups.has(id)) return;
    const gain = this.ctx.createGain();
    gain.connect(this.ctx.destination);
    // The last frames' mouth-to-ear delays (ms): from the talker's capture
    // time in the header to the moment the frame reaches the speaker.
    stats.mouthToEarMs = [];
    stats.dropped = { straggler: 0, late: 0, busy: 0, decodedLate: 0 };
    stats.catchUpMs = 0; // delay added to bursts because the page fell behind
    const g = { id, gain, stats, decoder: null, spare: null, slots: [], stream: null, ended: [], playEnd: 0 };
    // A decoder is made and configured ahead of each burst: starting one
    // takes long enough to make a burst's first words late.
    g.spare = this.makeDecoder(g);
    this.groups.set(id, g);
  }

  /** Stops playing group `id` (left, or regrouped out). */
  removeGroup(id) {
    const g = this.groups.get(id);
    if (!g) return;
    for (const d of [g.decoder, g.spare]) if (d && d.state !== 'closed') d.close();
    g.gain.disconnect();
    this.groups.delete(id);
  }

  /** Removes every group (end of session); the alarm stops too. */
  clear() {
    for (const id of [...this.groups.keys()]) this.removeGroup(id);
    this.setAlarm(false);
  }

  /** Sets a group's output level: 0 when muted, else `volume` (0..1). */
  setLevel(id, muted, volume) {
    const g = this.groups.get(id);
    if (g) g.gain.gain.setTargetAtTime(muted ? 0 : volume, this.ctx.currentTime, 0.01);
  }

  /**
   * The group's burst ended on the control stream (FloorIdle or a new
   * holder): no stall probe for it; frames still in flight play out.
   */
  burstEnded(id) {
    const g = this.groups.get(id);
    if (g && g.stream) g.stream.ended = true;
  }

  /** Takes one received datagram (the bare voice datagram of voice.md §3). */
  receive(bytes) {
    const h = parseDatagram(bytes, this.maxSize);
    if (!h) {
      this.counters.malformed += 1;
      return;
    }
    if (h.kind !== Kind.VOICE) return; // the relay never forwards probes
    const g = this.groups.get(h.groupId);
    if (!g) {
      this.counters.unknownGroup += 1;
      return;
    }
    const now = this.ctx.currentTime;
    let s = g.stream;
    let idx;
    if (!s || s.burstId !== h.burstId) {
      if (g.ended.includes(h.burstId)) {
        this.drop(g, 'straggler'); // a frame of a burst already replaced
        return;
      }
      if (s) g.ended = [s.burstId, ...g.ended].slice(0, REMEMBERED_BURSTS);
      s = g.stream = this.newStream(g, h, now);
      idx = 0;
    } else {
      const d = seqDelta(h.sequence, s.top);
      idx = s.topIdx + d;
      if (d > 0) {
        s.top = h.sequence;
        s.topIdx = idx;
        // The newest frame's slot has passed: the stream fell behind (a
        // network stall). Re-anchor so it plays after the target delay again
        // instead of every frame from here on arriving late.
        if (s.anchor + idx * FRAME_S < now + GIVE_UP_S) s.anchor = now + JITTER_TARGET_S - idx * FRAME_S;
      } else if (idx < s.nextIdx || s.pending.has(idx)) {
        this.drop(g, 'late'); // a duplicate, or too late for its slot
        return;
      }
    }
    s.lastArrival = performance.now();
    if (h.last) s.ended = true;
    s.pending.set(idx, { payload: h.payload.slice(), sentUs: h.timestampUs });
    this.pump();
  }

  newStream(g, h, now) {
    // A new burst: fresh decoder state, frames played after the target delay
    // (never before the previous burst's audio has finished).
    // (A reset decoder is unconfigured, so each burst gets a fresh one: the
    // spare made ahead of it.)
    if (g.decoder && g.decoder.state !== 'closed') g.decoder.close();
    g.decoder = g.spare && g.spare.state === 'configured' ? g.spare : null;
    g.spare = this.makeDecoder(g);
    g.slots = [];
    return {
      burstId: h.burstId,
      talkerId: h.talkerId,
      top: h.sequence, // any first sequence is accepted: late entry (§3.3)
      topIdx: 0, // frames are indexed from the burst's first one received
      nextIdx: 0, // the next index to hand to the decoder
      anchor: Math.max(now + JITTER_TARGET_S, g.playEnd),
      caughtUp: 0, // seconds added to the anchor because the page fell behind
      pending: new Map(), // index from the burst's first frame → Opus packet
      lastArrival: 0,
      ended: false,
      probed: false,
    };
  }

  // Hands every frame to its decoder in order as soon as it is in; a slot
  // whose frame has not come GIVE_UP_S before it is a lost frame (silent).
  pump() {
    const now = this.ctx.currentTime;
    for (const g of this.groups.values()) {
      const s = g.stream;
      if (!s) continue;
      while (s.nextIdx <= s.topIdx) {
        const at = s.anchor + s.nextIdx * FRAME_S;
        const frame = s.pending.get(s.nextIdx);
        if (!frame && at > now + GIVE_UP_S) break; // it may still come
        s.pending.delete(s.nextIdx);
        s.nextIdx += 1;
        if (!frame) {
          g.stats.framesLost += 1;
        } else if (at >= now) {
          this.decode(g, frame, at);
        } else {
          // The page was too busy to pass it on in time: the burst plays a
          // little later from here on, rather than losing frame after frame.
          const shift = this.catchUp(g, now - at);
          if (shift > 0) this.decode(g, frame, at + shift);
          else this.drop(g, 'busy');
        }
      }
      if (!s.ended && !s.probed && performance.now() - s.lastArrival > STALL_MS) {
        s.probed = true;
        this.counters.probesSent += 1;
        this.sendProbe();
      }
    }
  }

  drop(g, why) {
    g.stats.framesDropped += 1;
    g.stats.dropped[why] += 1;
  }

  /**
   * Moves the rest of the group's current burst `late` seconds (and a
   * margin) later: its anchor and the frames already with the decoder. At
   * most MAX_CATCH_UP_S per burst, so a page that stays behind drops frames
   * rather than drifting ever further from the talker. Returns the shift
   * (seconds), 0 if none was allowed.
   */
  catchUp(g, late) {
    const s = g.stream;
    const shift = late + CATCH_UP_MARGIN_S;
    if (!s || s.caughtUp + shift > MAX_CATCH_UP_S) return 0;
    s.caughtUp += shift;
    s.anchor += shift;
    for (const slot of g.slots) slot.at += shift;
    g.stats.catchUpMs += Math.round(shift * 1000);
    return shift;
  }

  makeDecoder(g) {
    const decoder = new AudioDecoder({
      output: (data) => this.play(g, data),
      error: (e) => {
        g.slots = [];
        this.onError('voice decoder of group ' + g.id + ' failed: ' + e.message);
      },
    });
    decoder.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: 1 });
    return decoder;
  }

  decode(g, frame, at) {
    if (!g.decoder || g.decoder.state !== 'configured') g.decoder = this.makeDecoder(g);
    // Decoders number their output from the first input on, ignoring gaps,
    // so each output takes its slot from this queue (one output per packet).
    g.slots.push({ at, sentUs: frame.sentUs });
    g.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: Math.round(at * 1e6), data: frame.payload }));
  }

  play(g, data) {
    try {
      const slot = g.slots.shift();
      let at = slot ? slot.at : undefined;
      const n = data.numberOfFrames;
      const samples = new Float32Array(n);
      data.copyTo(samples, { planeIndex: 0, format: 'f32-planar' });
      g.stats.framesDecoded += 1;
      let peak = 0;
      for (let i = 0; i < n; i++) peak = Math.max(peak, Math.abs(samples[i]));
      g.stats.peakLevel = Math.max(g.stats.peakLevel, Math.min(1, peak));
      if (at === undefined) {
        this.drop(g, 'decodedLate');
        return;
      }
      const late = this.ctx.currentTime - at;
      if (late > 0) {
        // Decoded after its slot: this frame and the rest of the burst play
        // later, within the catch-up allowance.
        const shift = this.catchUp(g, late);
        if (shift === 0) {
          this.drop(g, 'decodedLate');
          return;
        }
        at += shift;
      }
      const buffer = this.ctx.createBuffer(1, n, data.sampleRate);
      buffer.copyToChannel(samples, 0);
      const source = this.ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(g.gain);
      source.start(at);
      g.playEnd = Math.max(g.playEnd, at + buffer.duration);
      this.noteMouthToEar(g, at, slot.sentUs);
    } finally {
      data.close();
    }
  }

  /**
   * Records how long after its capture a frame will be heard: its slot on
   * the audio clock, plus the output's own latency, in Unix time, less the
   * talker's capture time from the header (one clock on one machine; across
   * machines, their NTP offset). Keeps the last MOUTH_TO_EAR_KEPT.
   */
  noteMouthToEar(g, at, sentUs) {
    if (!sentUs) return;
    const heardUs = unixMicros() + (at - this.ctx.currentTime + (this.ctx.outputLatency || 0)) * 1e6;
    const delays = g.stats.mouthToEarMs;
    delays.push((heardUs - sentUs) / 1000);
    if (delays.length > MOUTH_TO_EAR_KEPT) delays.splice(0, delays.length - MOUTH_TO_EAR_KEPT);
  }

  /**
   * Turns the emergency alarm on or off: a two-tone siren (a square wave
   * swept 650↔950 Hz twice a second by a second oscillator), made in Web
   * Audio so no sound file is needed. Not affected by group mutes.
   */
  setAlarm(on) {
    if (on === !!this.alarm) return;
    if (!on) {
      this.alarm.tone.stop();
      this.alarm.sweep.stop();
      this.alarm.out.disconnect();
      this.alarm = null;
      return;
    }
    const tone = this.ctx.createOscillator();
    tone.type = 'square';
    tone.frequency.value = 800;
    const sweep = this.ctx.createOscillator();
    sweep.type = 'square';
    sweep.frequency.value = 2;
    const depth = this.ctx.createGain();
    depth.gain.value = 150;
    sweep.connect(depth).connect(tone.frequency);
    const out = this.ctx.createGain();
    out.gain.value = 0.12;
    tone.connect(out).connect(this.ctx.destination);
    tone.start();
    sweep.start();
    this.alarm = { tone, sweep, out };
  }
}
