// The status feed: status messages terminals send to the control room ("on
// scene", "need backup"), and alerts other dispatchers send, newest first.
// At log-in the last ones come from the ops API (`/api/v1/status-messages`),
// so a reload does not start from an empty feed; live ones are then
// prepended, and a live one that is also in the history is shown once.

import { getJson } from './api.js';

const $ = (id) => document.getElementById(id);
const MAX_ITEMS = 200; // older ones scroll away; the ops API keeps the history
// How far a live message's arrival may precede the relay's own time of it
// (clocks of browser and relay apart) and still be the same message.
const SAME_MESSAGE_SLACK_MS = 5000;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * The feed (`#status-feed`). `terminalName(id)` and `groupName(id)` name
 * senders and recipients; `model` is window.pttConsole.statusFeed (an
 * array, newest first, of {at, from, code, text, kind}, with `id` (the
 * call log's) and `history: true` for those loaded at log-in), kept as
 * short as the list. Each `li` has `data-from` (and `data-code`); its
 * sender's name is a `[data-terminal]`, which an operator can drag onto a
 * group.
 */
export class StatusFeed {
  constructor(model, { terminalName, groupName }) {
    this.model = model;
    this.terminalName = terminalName;
    this.groupName = groupName;
    this.labels = new Map(); // status code → label (HelloOk.status_codes)
    this.items = []; // the <li> of each model entry, same order
    this.generation = 0; // bumped by clear(): a history answer for an older session is dropped
  }

  /** The directory's status codes from HelloOk, so a bare code reads as its label. */
  setCodes(codes) {
    this.labels = new Map(codes.map((c) => [c.code, c.label]));
  }

  /** Clears the feed (a new session). */
  clear() {
    this.model.length = 0;
    this.items = [];
    this.generation += 1;
    $('status-feed').replaceChildren();
  }

  /** Readable text of a status: the code's label with any text the sender added. */
  describe(code, label, text) {
    if (label && text && text !== label) return label + ' — ' + text;
    if (label) return label;
    if (text) return (code ? 'code ' + code + ': ' : '') + text;
    return 'code ' + code;
  }

  /**
   * Loads the last `limit` status messages from the ops API (newest first)
   * into the feed, below any live ones received since log-in; one the page
   * already got live is not shown twice. `self` is this console's terminal
   * id. Rejects with the API's error text.
   */
  async loadHistory(limit, self) {
    const generation = this.generation;
    const { status_messages: rows } = await getJson('/api/v1/status-messages?limit=' + limit);
    if (generation !== this.generation) return;
    const matched = new Set(); // live entries already paired with a history row
    for (const r of rows) {
      if (this.model.some((m) => m.id === r.id)) continue;
      const key = statusKey(r.from.id, r.code, r.text || r.label, r.to, r.target ? r.target.id : 0);
      const live = this.model.find((m) => !m.history && !matched.has(m) && m.key === key
        && m.at >= r.at_ms - SAME_MESSAGE_SLACK_MS);
      if (live) {
        matched.add(live);
        continue;
      }
      let to = '';
      if (r.to === 'group' && r.target) to = ' → ' + (r.target.name || 'group ' + r.target.id);
      else if (r.to === 'terminal' && r.target) to = r.target.id === self ? ' → you' : ' → ' + (r.target.name || 'terminal ' + r.target.id);
      this.add({
        at: r.at_ms, from: r.from.id, code: r.code, name: r.from.name,
        text: this.describe(r.code, r.label, r.text) + to, kind: 'status', id: r.id, key, history: true,
      });
    }
  }

  /**
   * A StatusMessage arrived: shown on top as time, sender, and the code's
   * label with any text the sender added (or the bare code if the directory
   * does not know it).
   */
  onStatus(s) {
    const label = s.code ? this.labels.get(s.code) : undefined;
    const text = this.describe(s.code, label, s.text);
    const to = s.target === 'groupId' ? ' → ' + this.groupName(s.groupId) : s.target === 'terminalId' ? ' → you' : '';
    const [kind, target] = s.target === 'groupId' ? ['group', s.groupId]
      : s.target === 'terminalId' ? ['terminal', s.terminalId] : ['dispatchers', 0];
    const key = statusKey(s.fromTerminalId, s.code, s.text || label, kind, target);
    this.add({ from: s.fromTerminalId, code: s.code, text: text + to, kind: 'status', key });
  }

  /**
   * An alert addressed to this console (another dispatcher's roll call);
   * `respond` (if given) answers it, shown as a button while it is needed.
   */
  onAlert(a, respond) {
    const li = this.add({ from: a.fromTerminalId, code: 0, text: 'ALERT: ' + a.text, kind: 'alert', name: a.fromName });
    if (respond) {
      const b = el('button', 'respond', 'Acknowledge');
      b.type = 'button';
      b.addEventListener('click', () => {
        b.disabled = true;
        respond();
        b.textContent = 'Acknowledged';
      });
      li.append(b);
    }
  }

  /**
   * Shows one entry where its time puts it (live ones, now, on top; history
   * below them) and returns its <li>.
   */
  add({ at = Date.now(), from, code, text, kind, name, id, key, history }) {
    const item = { at, from, code, text, kind };
    if (id !== undefined) item.id = id;
    if (history) item.history = true;
    // Not enumerable: the model stays what tests compare, the key for deduplication.
    Object.defineProperty(item, 'key', { value: key || null });
    const li = el('li', kind + (history ? ' history' : ''));
    li.dataset.from = String(from);
    if (code) li.dataset.code = String(code);
    const when = new Date(at);
    const today = when.toDateString() === new Date().toDateString();
    const time = el('time', 'at', today ? when.toLocaleTimeString() : when.toLocaleString());
    time.dateTime = when.toISOString();
    const who = el('span', 'who', name || this.terminalName(from));
    if (from) who.dataset.terminal = String(from);
    li.append(time, who, el('span', 'what', text));
    let i = 0;
    while (i < this.model.length && this.model[i].at >= at) i += 1;
    const list = $('status-feed');
    if (i < this.items.length) list.insertBefore(li, this.items[i]);
    else list.append(li);
    this.model.splice(i, 0, item);
    this.items.splice(i, 0, li);
    while (this.model.length > MAX_ITEMS) {
      this.model.pop();
      this.items.pop().remove();
    }
    return li;
  }
}

/** What identifies a status message across the live stream and the history. */
function statusKey(from, code, text, to, target) {
  return [from, code, text || '', to, target || 0].join('|');
}
