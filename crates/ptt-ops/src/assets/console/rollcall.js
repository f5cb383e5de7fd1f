// Roll call: the dispatcher composes an alert for some groups and watches
// who answers (ptt.proto `Alert`, `AlertTally`).
//
// The relay answers an `Alert` with the first `AlertTally`: the counts and
// every target as an entry of kind UNSPECIFIED (not answered yet). Each later
// tally, an event, carries the new counts and only the entries that changed,
// so the page keeps the entries by terminal and updates the "not answered"
// list one item at a time.
//
// "Answered" depends on the alert: with acknowledgement required it is a
// human answer (RESPONDING or UNABLE; DELIVERED is sent by the handset on
// its own); without, being delivered is all that is asked.

import { AlertAckKind } from './proto.js';

const $ = (id) => document.getElementById(id);
const MAX_TEXT = 4096; // bytes; the relay refuses longer alert texts

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** An empty roll call, as window.pttConsole.rollCall holds before the first alert. */
export function emptyRollCall() {
  return {
    state: 'idle', // 'idle', 'sending', 'open' (tallies arrive), 'failed'
    alertId: null,
    text: '',
    requiresAck: true,
    groups: [],
    total: 0,
    answered: 0,
    delivered: 0,
    responding: 0,
    unable: 0,
    missing: [],
    byGroup: {},
    byOrganisation: {},
    error: null,
  };
}

/**
 * The roll-call panel. `model` is window.pttConsole.rollCall (updated in
 * place); `send(alert)` sends an `Alert` request and returns its request id,
 * or throws when offline.
 */
export class RollCall {
  constructor(model, { send }) {
    this.model = model;
    this.send = send;
    this.requestId = null;
    this.entries = new Map(); // terminal id → latest AlertAckEntry
    this.missingItems = new Map(); // terminal id → <li>
    $('rollcall-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submit();
    });
    $('rollcall-all').addEventListener('change', () => {
      for (const box of this.boxes()) box.checked = $('rollcall-all').checked;
      this.syncAll();
    });
    $('rollcall-groups').addEventListener('change', () => this.syncAll());
  }

  boxes() {
    return [...$('rollcall-groups').querySelectorAll('input[data-rollcall-group]')];
  }

  /**
   * The groups the dispatcher may alert ([{groupId, name, joined}]): one
   * checkbox each, `input[data-rollcall-group="<id>"]`, ticks kept. The
   * relay lets a dispatcher alert any group of the directory; the console
   * offers those it is in, and is told again whenever that changes (join,
   * leave, regrouped); one not joined is shown dimmed (`.not-joined`).
   * Unchanged lists are left alone, so a tick being made is not lost.
   */
  setGroups(groups) {
    const list = $('rollcall-groups');
    const signature = groups.map((g) => g.groupId + (g.joined === false ? '-' : '+') + (g.name || '')).join(',');
    if (signature === this.signature) return;
    this.signature = signature;
    const checked = new Set(this.boxes().filter((b) => b.checked).map((b) => b.dataset.rollcallGroup));
    list.replaceChildren(...groups.map((g) => {
      const label = el('label', 'rollcall-group' + (g.joined === false ? ' not-joined' : ''));
      if (g.joined === false) label.title = 'Not joined: its members are alerted all the same';
      const box = el('input');
      box.type = 'checkbox';
      box.dataset.rollcallGroup = String(g.groupId);
      box.checked = checked.has(String(g.groupId));
      label.append(box, document.createTextNode(' ' + (g.name || 'group ' + g.groupId)));
      return label;
    }));
    this.syncAll();
  }

  syncAll() {
    const boxes = this.boxes();
    const n = boxes.filter((b) => b.checked).length;
    const all = $('rollcall-all');
    all.checked = boxes.length > 0 && n === boxes.length;
    all.indeterminate = n > 0 && n < boxes.length;
  }

  submit() {
    const text = $('rollcall-text').value.trim();
    const groups = this.boxes().filter((b) => b.checked).map((b) => Number(b.dataset.rollcallGroup));
    const requiresAck = $('rollcall-ack').checked;
    if (!text) return this.fail('Write the alert text first');
    if (new TextEncoder().encode(text).length > MAX_TEXT) return this.fail('The alert text is longer than 4096 bytes');
    if (groups.length === 0) return this.fail('Choose at least one group');
    try {
      this.requestId = this.send({ text, targetGroupIds: groups, requiresAck });
    } catch (e) {
      return this.fail('Cannot send the alert: ' + e.message);
    }
    this.entries.clear();
    this.missingItems.clear();
    Object.assign(this.model, emptyRollCall(), { state: 'sending', text, requiresAck, groups });
    $('rollcall-send').disabled = true;
    this.render();
    return undefined;
  }

  fail(message) {
    this.model.error = message;
    $('rollcall-error').textContent = message;
  }

  /** The relay refused the Alert request (`reason` is readable text). */
  refused(requestId, reason) {
    if (requestId !== this.requestId) return false;
    this.model.state = 'failed';
    $('rollcall-send').disabled = false;
    this.fail('The relay refused the alert: ' + reason);
    this.render();
    return true;
  }

  /**
   * An AlertTally arrived; `requestId` is the request it answers (0 for an
   * event). The answer to our Alert names the alert id; events of other
   * alerts (another dispatcher's) are not this panel's.
   */
  onTally(t, requestId) {
    if (requestId && requestId === this.requestId) {
      this.model.alertId = t.alertId;
      this.model.state = 'open';
      $('rollcall-send').disabled = false;
      $('rollcall-text').value = '';
    } else if (t.alertId !== this.model.alertId || this.model.alertId === null) {
      return;
    }
    for (const e of t.entries) this.entries.set(e.terminalId, e);
    const m = this.model;
    const answeredOf = (p) => (m.requiresAck ? p.responding + p.unable : p.delivered);
    Object.assign(m, {
      total: t.targets,
      delivered: t.delivered,
      responding: t.responding,
      unable: t.unable,
      answered: answeredOf(t),
      error: null,
    });
    const part = (p) => ({
      name: p.name, total: p.targets, answered: answeredOf(p),
      delivered: p.delivered, responding: p.responding, unable: p.unable,
    });
    m.byGroup = {};
    for (const p of t.groups) m.byGroup[p.groupId] = part(p);
    m.byOrganisation = {};
    for (const p of t.organisations) m.byOrganisation[p.name] = part(p);
    const answered = (e) => (m.requiresAck
      ? e.kind === AlertAckKind.RESPONDING || e.kind === AlertAckKind.UNABLE
      : e.kind !== AlertAckKind.UNSPECIFIED);
    m.missing = [...this.entries.values()].filter((e) => !answered(e)).map((e) => e.terminalId);
    this.render();
  }

  render() {
    const m = this.model;
    $('rollcall-error').textContent = m.error || '';
    const summary = $('rollcall-summary');
    if (m.state === 'idle') {
      summary.textContent = 'No roll call sent yet';
    } else if (m.state === 'sending') {
      summary.textContent = 'Sending “' + m.text + '”…';
    } else if (m.state === 'failed') {
      summary.textContent = 'Not sent';
    } else {
      summary.textContent = '“' + m.text + '”: ' + m.answered + ' / ' + m.total
        + (m.requiresAck ? ' answered (' + m.responding + ' responding, ' + m.unable + ' unable, '
          + m.delivered + ' seen)' : ' received');
    }
    summary.classList.toggle('complete', m.state === 'open' && m.total > 0 && m.answered >= m.total);
    renderParts($('rollcall-by-group'), m.byGroup, 'tallyGroup');
    renderParts($('rollcall-by-org'), m.byOrganisation, 'tallyOrganisation');
    this.renderMissing();
  }

  renderMissing() {
    const list = $('rollcall-missing');
    const want = new Set(this.model.missing);
    for (const [id, li] of this.missingItems) {
      if (!want.has(id)) {
        li.remove();
        this.missingItems.delete(id);
      }
    }
    for (const id of this.model.missing) {
      const e = this.entries.get(id);
      let li = this.missingItems.get(id);
      if (!li) {
        li = el('li');
        li.dataset.terminal = String(id);
        this.missingItems.set(id, li);
        list.append(li);
      }
      const text = (e && e.name) || 'terminal ' + id;
      const seen = e && e.kind === AlertAckKind.DELIVERED ? ' (seen)' : '';
      if (li.textContent !== text + seen) li.textContent = text + seen;
      li.classList.toggle('seen', !!seen);
    }
    $('rollcall-missing-count').textContent = this.model.state === 'open' ? String(this.model.missing.length) : '';
  }
}

// Rows `[data-tally-group="<id>"]` (or data-tally-organisation): name,
// answered/total and a bar; rebuilt only when a figure changed.
function renderParts(tbody, parts, key) {
  const rows = new Map([...tbody.children].map((tr) => [tr.dataset[key], tr]));
  const keep = new Set();
  for (const [id, p] of Object.entries(parts)) {
    keep.add(id);
    let tr = rows.get(id);
    if (!tr) {
      tr = el('tr');
      tr.dataset[key] = id;
      tr.append(el('td', 'part-name'), el('td', 'part-count'), el('td', 'part-bar'));
      tr.children[2].append(el('span', 'bar'));
      tbody.append(tr);
    }
    tr.children[0].textContent = p.name;
    tr.children[1].textContent = p.answered + ' / ' + p.total;
    tr.children[2].firstChild.style.width = (p.total ? Math.round((100 * p.answered) / p.total) : 0) + '%';
    tr.classList.toggle('complete', p.total > 0 && p.answered >= p.total);
  }
  for (const [id, tr] of rows) if (!keep.has(id)) tr.remove();
}
