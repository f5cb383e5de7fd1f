// Operator actions: a dispatcher who holds an admin token of the relay may
// add terminals to groups and remove those added, through the ops port's
// admin API (`PUT`/`DELETE /api/v1/admin/groups/{id}/members/{terminal}`).
//
// The token is pasted into `#operator-token` and kept in this module only:
// never in localStorage or a cookie, gone with the session (log-out, a lost
// connection) or a reload, since it can change the whole directory.
//
// The relay tells only the terminal concerned (`Regrouped`, reason ADMIN),
// not the control room, so the console shows the change from the API's own
// answer. A terminal is added by dragging it (a map marker, a member chip,
// a name in the status feed or the roll call) onto a group row, or with a
// row's "Add" button and its inline field (id or name, Enter), which works
// from the keyboard.

import { adminJson, getJson, AdminError } from './api.js';

const $ = (id) => document.getElementById(id);

/** What can be dragged onto a group row: anything naming one terminal. */
const DRAG_SOURCES = [
  '#map .marker[data-terminal]',
  '#groups li[data-member]',
  '#rollcall-missing li[data-terminal]',
  '#status-feed [data-terminal]',
].join(', ');
/** Pixels a press must move before it is a drag (a click stays a click). */
const DRAG_THRESHOLD_PX = 5;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** window.pttConsole.operator before a token is entered. */
export function noOperator() {
  return {
    state: 'off', // 'off' (no token), 'on', 'refused' (a 401/403 answered it)
    pending: 0, // admin requests under way
    last: null, // { action: 'add'|'remove', group, terminal, ok, status, error }
  };
}

/**
 * The operator token field and every admin action of the page. `model` is
 * window.pttConsole.operator (updated in place). Callbacks: `terminalName(id)`,
 * `groupName(id)`, `findTerminal(text)` (an id or a name → id, or null),
 * `onAdded(group, terminal)` and `onRemoved(group, terminal)` once the
 * relay made the change, `onError(message)` to show a failure and
 * `onSuccess()` when a change went through (the failure shown is stale).
 */
export class OperatorActions {
  constructor(model, callbacks) {
    this.model = model;
    Object.assign(this, callbacks);
    this.token = '';
    this.drag = null; // { pointerId, x, y, terminal, ghost, over }
    const input = $('operator-token');
    input.addEventListener('input', () => this.setToken(input.value));
    // Committing the field (Enter, leaving it) checks the token with a
    // read-only admin call, so a wrong one shows before a change is tried.
    input.addEventListener('change', () => this.verify());
    $('operator-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.verify();
    });
    document.addEventListener('pointerdown', (ev) => this.pointerDown(ev), true);
    window.addEventListener('pointermove', (ev) => this.pointerMove(ev));
    window.addEventListener('pointerup', (ev) => this.pointerUp(ev));
    window.addEventListener('pointercancel', () => this.endDrag());
    window.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') this.endDrag(); });
    this.render();
  }

  get enabled() {
    return this.token !== '';
  }

  /** Forgets the token: the session ended. */
  reset() {
    this.endDrag();
    $('operator-token').value = '';
    this.setToken('');
    this.model.last = null;
  }

  setToken(value) {
    this.token = value.trim();
    this.model.state = this.enabled ? 'on' : 'off';
    this.render();
  }

  render() {
    const state = $('operator-token-state');
    const text = { off: 'operator actions off', on: 'operator actions on', refused: 'token refused' }[this.model.state];
    if (state.textContent !== text) state.textContent = text;
    state.dataset.state = this.model.state;
    document.body.classList.toggle('operator-on', this.enabled);
  }

  /** Asks the admin API something harmless; a 401 or 403 marks the token refused. */
  async verify() {
    const token = this.token;
    if (!token) return;
    try {
      await adminJson('GET', '/api/v1/admin/terminals/disabled', token);
    } catch (e) {
      if (token === this.token) this.failed(e, 'The operator token was not accepted: ');
    }
  }

  /** A failed admin call: shown, and the token marked refused if that is why. */
  failed(e, what) {
    if (e instanceof AdminError && (e.status === 401 || e.status === 403)) {
      this.model.state = 'refused';
      this.render();
    }
    this.onError(what + e.message);
  }

  /**
   * The "Add" button of a group row and its inline form (`.add-member`,
   * `form.add-member-form` with `input.add-member-id`): Enter adds the
   * terminal typed (id or name), Escape closes. Shown only with a token.
   */
  addControl(groupId) {
    const button = el('button', 'add-member', '+');
    button.type = 'button';
    button.title = 'Add a terminal to ' + this.groupName(groupId) + ' (operator)';
    button.setAttribute('aria-label', 'Add terminal to ' + this.groupName(groupId));
    button.setAttribute('aria-expanded', 'false');
    const form = el('form', 'add-member-form');
    form.hidden = true;
    const input = el('input', 'add-member-id');
    input.type = 'text';
    input.autocomplete = 'off';
    input.placeholder = 'terminal id or name';
    input.setAttribute('aria-label', 'Terminal to add to ' + this.groupName(groupId));
    const submit = el('button', 'add-member-submit', 'Add');
    submit.type = 'submit';
    form.append(input, submit);
    const open = (on) => {
      form.hidden = !on;
      button.setAttribute('aria-expanded', String(on));
      if (on) input.focus();
    };
    button.addEventListener('click', () => open(form.hidden));
    input.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape') return;
      open(false);
      button.focus();
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      const terminal = this.findTerminal(text);
      if (terminal === null) {
        this.onError(text ? 'No terminal “' + text + '” in the directory' : 'Type a terminal id or name');
        return;
      }
      input.disabled = true;
      submit.disabled = true;
      const added = await this.add(groupId, terminal);
      input.disabled = false;
      submit.disabled = false;
      if (added) {
        input.value = '';
        open(false);
        button.focus();
      } else {
        input.focus();
      }
    });
    return { button, form };
  }

  /** A member chip's remove button (`button.remove-member`), shown only with a token. */
  removeButton(groupId, terminal) {
    const b = el('button', 'remove-member', '×');
    b.type = 'button';
    const what = 'Remove ' + this.terminalName(terminal) + ' from ' + this.groupName(groupId);
    b.title = what;
    b.setAttribute('aria-label', what);
    b.addEventListener('click', async (ev) => {
      ev.stopPropagation();
      b.disabled = true;
      if (!(await this.remove(groupId, terminal))) b.disabled = false;
    });
    return b;
  }

  /**
   * Adds `terminal` to `groupId` with the group's default rights (`PUT`,
   * body `{}`); resolves true once the relay made it a member. A terminal
   * already in the group is left alone: the PUT would reset its rights.
   */
  async add(groupId, terminal) {
    const what = 'Cannot add ' + this.terminalName(terminal) + ' to ' + this.groupName(groupId) + ': ';
    if (!this.enabled) {
      this.onError(what + 'enter the operator token first');
      return false;
    }
    try {
      const { groups } = await getJson('/api/v1/groups');
      const group = groups.find((g) => g.id === groupId);
      if (!group) throw new Error('not a group of the directory');
      if (group.members.includes(terminal)) throw new Error('already a member');
    } catch (e) {
      this.record('add', groupId, terminal, false, 0, e.message);
      this.onError(what + e.message);
      return false;
    }
    return this.change('add', 'PUT', groupId, terminal, {}, what);
  }

  /** Removes `terminal` from `groupId` (`DELETE`); resolves true once done. */
  async remove(groupId, terminal) {
    const what = 'Cannot remove ' + this.terminalName(terminal) + ' from ' + this.groupName(groupId) + ': ';
    if (!this.enabled) {
      this.onError(what + 'enter the operator token first');
      return false;
    }
    return this.change('remove', 'DELETE', groupId, terminal, undefined, what);
  }

  async change(action, method, groupId, terminal, body, what) {
    const token = this.token;
    this.model.pending += 1;
    try {
      const answer = await adminJson(method, '/api/v1/admin/groups/' + groupId + '/members/' + terminal, token, body);
      this.record(action, groupId, terminal, true, 200, null);
      this.onSuccess();
      if (token === this.token && this.model.state === 'refused') {
        this.model.state = 'on';
        this.render();
      }
      if (answer && answer.member) this.onAdded(groupId, terminal);
      else this.onRemoved(groupId, terminal);
      return true;
    } catch (e) {
      this.record(action, groupId, terminal, false, e.status || 0, e.message);
      this.failed(e, what);
      return false;
    } finally {
      this.model.pending -= 1;
    }
  }

  record(action, group, terminal, ok, status, error) {
    this.model.last = { action, group, terminal, ok, status, error };
  }

  // ---- dragging a terminal onto a group row ---------------------------------
  //
  // Pointer events rather than HTML5 drag and drop: map markers are SVG,
  // which cannot be `draggable`, and pointer events work the same for a
  // mouse, a pen, a touch screen and WebDriver's actions.

  pointerDown(ev) {
    if (!this.enabled || ev.button !== 0 || !(ev.target instanceof Element)) return;
    if (ev.target.closest('button, input, a')) return;
    const source = ev.target.closest(DRAG_SOURCES);
    if (!source) return;
    const terminal = Number(source.dataset.terminal || source.dataset.member);
    if (!Number.isInteger(terminal) || terminal <= 0) return;
    // On the map, a press on a marker is this drag, not a pan.
    if (source.closest('#map')) ev.stopPropagation();
    this.endDrag();
    this.drag = { pointerId: ev.pointerId, x: ev.clientX, y: ev.clientY, terminal, ghost: null, over: null };
  }

  pointerMove(ev) {
    const d = this.drag;
    if (!d || ev.pointerId !== d.pointerId) return;
    if (!d.ghost) {
      if (Math.hypot(ev.clientX - d.x, ev.clientY - d.y) < DRAG_THRESHOLD_PX) return;
      d.ghost = el('div', 'drag-ghost', this.terminalName(d.terminal));
      d.ghost.dataset.terminal = String(d.terminal);
      document.body.append(d.ghost);
      document.body.classList.add('dragging');
    }
    ev.preventDefault();
    d.ghost.style.transform = 'translate(' + (ev.clientX + 12) + 'px, ' + (ev.clientY + 8) + 'px)';
    const under = document.elementFromPoint(ev.clientX, ev.clientY);
    const row = under ? under.closest('#groups [data-group]') : null;
    if (row !== d.over) {
      if (d.over) d.over.classList.remove('drop-target');
      if (row) row.classList.add('drop-target');
      d.over = row;
    }
  }

  pointerUp(ev) {
    const d = this.drag;
    if (!d || ev.pointerId !== d.pointerId) return;
    const row = d.ghost ? d.over : null;
    this.endDrag();
    if (row) this.add(Number(row.dataset.group), d.terminal);
  }

  endDrag() {
    const d = this.drag;
    if (!d) return;
    this.drag = null;
    if (d.ghost) d.ghost.remove();
    if (d.over) d.over.classList.remove('drop-target');
    document.body.classList.remove('dragging');
  }
}
