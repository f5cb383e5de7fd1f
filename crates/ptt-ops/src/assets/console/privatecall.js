// Private calls (ptt.proto `PrivateCallSetup` …): the dispatcher calls one
// terminal, or takes a call. Once answered, the relay joins both parties to
// the call's temporary group (an unsolicited JoinOk) and they talk there with
// ordinary floor control: the console selects that group, so PTT talks into
// the call.

import { reasonText, PrivateCallRejectReason, PrivateCallEndReason } from './proto.js';

const $ = (id) => document.getElementById(id);

/** No call, as window.pttConsole.privateCall holds between calls. */
export function noPrivateCall() {
  // state: 'idle', 'calling' (asked the relay), 'ringing' (the callee
  // rings), 'incoming' (someone calls us), 'answered', 'rejected', 'ended',
  // 'failed' (refused by the relay). peer: the other terminal's id.
  return { state: 'idle', peer: null, peerName: null, group: null, callId: null, direction: null, reason: '' };
}

const LIVE = ['calling', 'ringing', 'incoming', 'answered'];

/**
 * The private-call panel. `model` is window.pttConsole.privateCall (updated
 * in place); `request(body)` sends a request and returns its id;
 * `terminalName(id)` names the peer; `onTalkGroup(groupId|null)` selects
 * the call's group for talking when it is answered, and lets go when it ends.
 */
export class PrivateCall {
  constructor(model, { request, terminalName, onTalkGroup }) {
    this.model = model;
    this.request = request;
    this.terminalName = terminalName;
    this.onTalkGroup = onTalkGroup;
    this.setupRequest = null;
    $('private-call-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.place();
    });
    $('private-call-end').addEventListener('click', () => this.hangUp());
    $('private-call-accept').addEventListener('click', () => this.accept());
    $('private-call-reject').addEventListener('click', () => this.reject());
    this.render();
  }

  /** Whether a call is up or being set up (one at a time, as the relay allows). */
  busy() {
    return LIVE.includes(this.model.state);
  }

  place() {
    if (this.busy()) return;
    const peer = Number($('private-call-terminal').value);
    if (!Number.isInteger(peer) || peer < 1 || peer > 0xffffffff) {
      this.set('failed', { reason: 'enter the terminal id to call' });
      return;
    }
    try {
      this.setupRequest = this.request({ privateCallSetup: { calleeTerminalId: peer } });
    } catch (e) {
      this.set('failed', { reason: e.message });
      return;
    }
    this.set('calling', { peer, peerName: null, group: null, callId: null, direction: 'outgoing', reason: '' });
  }

  /**
   * PrivateCallSetup from the relay: the answer to our setup (the call's
   * id and group; the callee now rings), or an incoming call.
   */
  onSetup(s, requestId) {
    if (requestId && requestId === this.setupRequest) {
      this.set('ringing', { callId: s.callId, group: s.groupId || null });
      return;
    }
    if (requestId) return;
    if (this.busy()) {
      // The relay does not ring a terminal already in a call; a stale ring.
      this.request({ privateCallReject: { callId: s.callId, reason: 2 } });
      return;
    }
    this.set('incoming', {
      peer: s.callerTerminalId, callId: s.callId, group: s.groupId, direction: 'incoming',
      reason: s.emergency ? 'EMERGENCY call' : '', peerName: s.callerName,
    });
  }

  /** The callee accepted our call: talk in its group. */
  onAccept(a) {
    if (a.callId !== this.model.callId) return;
    this.set('answered', { group: a.groupId });
    this.onTalkGroup(a.groupId);
  }

  /** The callee (or the relay on its behalf) refused our call. */
  onReject(r) {
    if (r.callId !== this.model.callId) return;
    this.set('rejected', { reason: reasonText('PrivateCallRejectReason', r.reason) });
  }

  /** The call ended on the other side (or the relay ended it). */
  onEnd(e) {
    if (e.callId !== this.model.callId) return;
    this.finish('ended', reasonText('PrivateCallEndReason', e.reason));
  }

  /** The relay refused a request of ours; true if it was this panel's. */
  refused(requestId, request, reason) {
    if (!request) return false;
    if (requestId === this.setupRequest && request.privateCallSetup) {
      this.set('failed', { reason });
      return true;
    }
    if (request.privateCallAccept || request.privateCallEnd || request.privateCallReject) {
      this.finish('ended', reason);
      return true;
    }
    return false;
  }

  accept() {
    if (this.model.state !== 'incoming') return;
    this.request({ privateCallAccept: { callId: this.model.callId, groupId: this.model.group } });
    this.set('answered', {});
    this.onTalkGroup(this.model.group);
  }

  reject() {
    if (this.model.state !== 'incoming') return;
    this.request({ privateCallReject: { callId: this.model.callId, reason: PrivateCallRejectReason.DECLINED } });
    this.finish('rejected', 'declined');
  }

  hangUp() {
    if (this.model.state === 'incoming') return this.reject();
    if (!this.busy()) return undefined;
    if (this.model.callId !== null) {
      this.request({ privateCallEnd: { callId: this.model.callId, reason: PrivateCallEndReason.HANGUP } });
    }
    // 'calling' without a call id: the relay's answer still comes; its call
    // id is unknown yet, so it rings until the relay's own timeout.
    this.finish('ended', 'hung up');
    return undefined;
  }

  /** The session ended: so did any call. */
  reset() {
    Object.assign(this.model, noPrivateCall());
    this.setupRequest = null;
    this.render();
  }

  finish(state, reason) {
    const group = this.model.group;
    this.set(state, { reason });
    if (group) this.onTalkGroup(null, group);
  }

  set(state, fields) {
    Object.assign(this.model, fields, { state });
    this.render();
  }

  render() {
    const m = this.model;
    const who = m.peer ? (m.peerName || this.terminalName(m.peer)) : '';
    const text = {
      idle: 'No private call',
      calling: 'Calling ' + who + '…',
      ringing: 'Ringing ' + who + '…',
      incoming: 'Incoming call from ' + who + (m.reason ? ' (' + m.reason + ')' : ''),
      answered: 'In a call with ' + who + ' — hold PTT to talk',
      rejected: 'Call to ' + who + ' rejected: ' + m.reason,
      ended: 'Call with ' + who + ' ended' + (m.reason ? ': ' + m.reason : ''),
      failed: 'Cannot call: ' + m.reason,
    }[m.state];
    const out = $('private-call-state');
    out.textContent = text;
    out.dataset.state = m.state;
    $('private-call').disabled = this.busy();
    $('private-call-end').hidden = !this.busy() || m.state === 'incoming';
    $('private-call-accept').hidden = m.state !== 'incoming';
    $('private-call-reject').hidden = m.state !== 'incoming';
  }
}
