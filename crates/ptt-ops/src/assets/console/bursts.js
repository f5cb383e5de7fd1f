// "Recent" in a group row: the group's last talk bursts from the call log
// (/api/v1/bursts?group=&limit=5) with a play button each, so a dispatcher
// can hear again what was just said. Recordings play through one shared
// <audio> element (#recording-player): one at a time, as a radio would.

import { getJson } from './api.js';

const $ = (id) => document.getElementById(id);
const LIMIT = 5;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function duration(ms) {
  return ms < 60000 ? (ms / 1000).toFixed(1) + ' s' : Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
}

/**
 * The bursts lists of every group row. `onError(message)` shows failures
 * (API refused, recording gone) on the console's status line too.
 */
export class RecentBursts {
  constructor({ onError }) {
    this.onError = onError;
    this.player = $('recording-player');
    this.playing = null; // the <button> whose recording plays
    this.player.addEventListener('ended', () => this.stopped());
    this.player.addEventListener('error', () => {
      const what = this.playing ? this.playing.dataset.recording : 'the recording';
      this.stopped();
      this.onError('Cannot play ' + what + (this.player.error ? ': ' + (this.player.error.message || 'code ' + this.player.error.code) : ''));
    });
  }

  /**
   * Adds the "Recent" toggle (`button.recent-toggle`) and its list
   * (`ul.recent`, items `li[data-burst="<call-log row id>"]` with
   * `button.play`) to a group row; returns both for the row's layout.
   */
  attach(groupId) {
    const toggle = el('button', 'recent-toggle', 'Recent');
    toggle.type = 'button';
    toggle.setAttribute('aria-expanded', 'false');
    toggle.title = 'The last ' + LIMIT + ' bursts of this group';
    const list = el('ul', 'recent');
    list.hidden = true;
    toggle.addEventListener('click', () => {
      const open = list.hidden;
      list.hidden = !open;
      toggle.setAttribute('aria-expanded', String(open));
      if (open) this.load(groupId, list);
    });
    return { toggle, list };
  }

  async load(groupId, list) {
    list.replaceChildren(el('li', 'loading', 'Loading…'));
    let bursts;
    try {
      ({ bursts } = await getJson('/api/v1/bursts?group=' + groupId + '&limit=' + LIMIT));
    } catch (e) {
      list.replaceChildren(el('li', 'error', 'Cannot load the bursts: ' + e.message));
      return;
    }
    if (bursts.length === 0) {
      list.replaceChildren(el('li', 'empty', 'No bursts yet'));
      return;
    }
    list.replaceChildren(...bursts.map((b) => {
      const li = el('li');
      li.dataset.burst = String(b.id);
      const play = el('button', 'play', '▶');
      play.type = 'button';
      if (b.recording) {
        play.dataset.recording = b.recording;
        play.title = 'Play burst ' + b.id;
        play.setAttribute('aria-label', 'Play the burst of ' + b.talker.name);
        play.addEventListener('click', () => this.toggle(play));
      } else {
        play.disabled = true;
        play.title = 'Not recorded';
      }
      li.append(
        play,
        el('time', 'at', new Date(b.started_at_ms).toLocaleTimeString()),
        el('span', 'who', b.talker.name),
        el('span', 'len', duration(Math.max(0, b.ended_at_ms - b.started_at_ms))),
      );
      if (b.outcome && b.outcome !== 'released') li.append(el('span', 'outcome', b.outcome));
      return li;
    }));
  }

  toggle(button) {
    if (this.playing === button) {
      this.player.pause();
      this.stopped();
      return;
    }
    if (this.playing) this.stopped();
    this.playing = button;
    button.textContent = '■';
    button.classList.add('playing');
    this.player.src = button.dataset.recording;
    this.player.play().catch((e) => {
      if (this.playing !== button) return; // replaced by another play
      this.stopped();
      this.onError('Cannot play ' + button.dataset.recording + ': ' + e.message);
    });
  }

  stopped() {
    if (!this.playing) return;
    this.playing.textContent = '▶';
    this.playing.classList.remove('playing');
    this.playing = null;
  }
}
