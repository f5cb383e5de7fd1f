// The status feed: status messages terminals send to the control room ("on
// scene", "need backup"), and alerts other dispatchers send, newest first.

const $ = (id) => document.getElementById(id);
const MAX_ITEMS = 200; // older ones scroll away; the ops API keeps the history

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * The feed (`#status-feed`). `terminalName(id)` names senders; `model` is
 * window.pttConsole.statusFeed (an array, newest first, of {at, from, code,
 * text}), kept as short as the list.
 */
export class StatusFeed {
  constructor(model, { terminalName }) {
    this.model = model;
    this.terminalName = terminalName;
    this.labels = new Map(); // status code → label (HelloOk.status_codes)
  }

  /** The directory's status codes from HelloOk, so a bare code reads as its label. */
  setCodes(codes) {
    this.labels = new Map(codes.map((c) => [c.code, c.label]));
  }

  /** Clears the feed (a new session). */
  clear() {
    this.model.length = 0;
    $('status-feed').replaceChildren();
  }

  /**
   * A StatusMessage arrived: shown on top as time, sender, and the code's
   * label with any text the sender added (or the bare code if the directory
   * does not know it).
   */
  onStatus(s) {
    const label = s.code ? this.labels.get(s.code) : undefined;
    let text;
    if (label && s.text && s.text !== label) text = label + ' — ' + s.text;
    else if (label) text = label;
    else if (s.text) text = (s.code ? 'code ' + s.code + ': ' : '') + s.text;
    else text = 'code ' + s.code;
    const to = s.target === 'groupId' ? ' → group ' + s.groupId : s.target === 'terminalId' ? ' → you' : '';
    this.add({ from: s.fromTerminalId, code: s.code, text: text + to, kind: 'status' });
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

  add({ from, code, text, kind, name }) {
    const at = Date.now();
    const item = { at, from, code, text, kind };
    this.model.unshift(item);
    if (this.model.length > MAX_ITEMS) this.model.length = MAX_ITEMS;
    const li = el('li', kind);
    li.dataset.from = String(from);
    if (code) li.dataset.code = String(code);
    li.append(
      el('time', 'at', new Date(at).toLocaleTimeString()),
      el('span', 'who', name || this.terminalName(from)),
      el('span', 'what', text),
    );
    const list = $('status-feed');
    list.prepend(li);
    while (list.children.length > MAX_ITEMS) list.lastElementChild.remove();
    return li;
  }
}
