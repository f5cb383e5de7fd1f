// The relay's live dashboard. Plain JavaScript, no framework, nothing
// fetched but this page's own files, the event stream and recordings.
//
// The relay pushes one snapshot a second over server-sent events
// (/api/v1/live): `history` once when the stream opens (the chart points of
// the last five minutes), then `snapshot` every second. Updates touch the
// DOM only where something changed: each group tile is created once and
// its texts and classes are set only when they differ, so a wall screen
// with 100 groups redraws a handful of nodes a second.
'use strict';

(function () {
  const HISTORY_SECS = 300;
  const STALE_MS = 5000;

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

  // ---- formatting -------------------------------------------------------

  // A latency in microseconds, readable from across the room.
  function fmtUs(us) {
    if (us === null || us === undefined) return '—';
    if (us < 1000) return Math.round(us) + ' µs';
    if (us < 10000) return (us / 1000).toFixed(2) + ' ms';
    if (us < 1000000) return Math.round(us / 1000) + ' ms';
    return (us / 1000000).toFixed(1) + ' s';
  }
  // One unit style throughout: "3.0 s", "25.4 s", "2 min 05 s", "1 h 02 min".
  function fmtDuration(ms) {
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    const s = Math.floor(ms / 1000);
    if (ms < 3600000) return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
    return Math.floor(s / 3600) + ' h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + ' min';
  }
  function fmtTime(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()]
      .map((n) => String(n).padStart(2, '0')).join(':');
  }
  function fmtBytes(n) {
    return n < 1024 ? n + ' B' : (n / 1024).toFixed(1) + ' kB';
  }

  // ---- groups -----------------------------------------------------------

  const BUSY = 16;
  const tiles = new Map(); // group id -> { root, name, members, queue, holder, emergency, dynamic, quality, dynamicKey }

  function tile(g) {
    let t = tiles.get(g.id);
    if (t) return t;
    const root = el('div', 'group');
    root.dataset.group = String(g.id);
    root.title = g.name;
    const name = el('div', 'g-name', g.name);
    const meta = el('div', 'g-meta');
    const members = el('span', 'g-members');
    const queue = el('span', 'g-queue');
    meta.append(members, queue);
    const emergency = el('div', 'g-emergency');
    const holder = el('div', 'g-holder');
    const dynamic = el('ul', 'g-dynamic');
    const quality = el('div', 'g-quality');
    root.append(name, meta, emergency, holder, dynamic, quality);
    $('groups').append(root);
    t = { root, name, members, queue, holder, emergency, dynamic, quality, dynamicKey: '' };
    tiles.set(g.id, t);
    return t;
  }

  // The members zone logic added to a group, one line per premises:
  // "+ T301, T302 · Compound A"; an emergency's backup is marked as such.
  function renderDynamic(t, dynamic) {
    const key = JSON.stringify(dynamic);
    if (t.dynamicKey === key) return;
    t.dynamicKey = key;
    const lines = new Map(); // reason + zone -> { reason, zone, names }
    for (const d of dynamic) {
      const k = d.reason + '|' + d.zone;
      if (!lines.has(k)) lines.set(k, { reason: d.reason, zone: d.zone, names: [] });
      lines.get(k).names.push(d.name || 'terminal ' + d.id);
    }
    t.dynamic.replaceChildren(...[...lines.values()].map((line) => {
      const li = el('li', line.reason === 'backup' ? 'backup' : 'patrol',
        '+ ' + line.names.join(', ') + (line.zone ? ' · ' + line.zone : ''));
      li.title = (line.reason === 'backup' ? 'pulled in by the emergency: ' : 'picked up by the patrol: ') + li.textContent;
      return li;
    }));
  }

  function renderGroups(groups) {
    const seen = new Set();
    let talking = 0;
    let emergencies = 0;
    for (const g of groups) {
      seen.add(g.id);
      const t = tile(g);
      setText(t.name, g.name);
      // Members online now: a number alone on an idle tile (its title says
      // what it counts); the stylesheet adds "online" on the big tiles.
      setText(t.members, String(g.members));
      t.members.title = 'members online now';
      if (t.root.title !== g.name) t.root.title = g.name;
      setText(t.queue, g.queue > 0 ? '+' + g.queue + ' queued' : '');
      setText(t.holder, g.holder ? (g.holder.name || 'terminal ' + g.holder.id) : '');
      setText(t.emergency, g.emergency ? (g.emergency.name || 'terminal ' + g.emergency.id) : '');
      const quality = [];
      if (g.m2e_us !== null) quality.push('mouth-to-ear ' + fmtUs(g.m2e_us));
      if (g.loss_pct !== null) quality.push('loss ' + g.loss_pct + ' %');
      setText(t.quality, quality.join(' · '));
      const dynamic = g.dynamic || [];
      renderDynamic(t, dynamic);
      t.root.classList.toggle('regrouped', dynamic.length > 0);
      t.root.classList.toggle('held', !!g.holder);
      t.root.classList.toggle('emergency', !!g.emergency);
      t.root.classList.toggle('queued', g.queue > 0);
      t.root.classList.toggle('empty', g.members === 0);
      // In a cluster: this relay decides the group's floor (holds its lease).
      t.root.classList.toggle('decided-here', g.decided_here === true);
      t.name.title = g.decided_here === true ? 'this relay decides the floor' : '';
      if (g.holder) talking += 1;
      if (g.emergency) emergencies += 1;
    }
    for (const [id, t] of tiles) {
      if (!seen.has(id)) {
        t.root.remove();
        tiles.delete(id);
      }
    }
    // Past what fits as big tiles, active groups become one line each.
    $('groups').classList.toggle('busy', talking + emergencies > BUSY);
    setText($('talking'), String(talking));
    setText($('emergencies'), String(emergencies));
    $('stat-talking').classList.toggle('active', talking > 0);
    $('stat-emergencies').classList.toggle('active', emergencies > 0);
    setText($('groups-count'), groups.length + ' groups');
  }

  // ---- latency figures and charts ----------------------------------------

  let history = [];
  let chartsDirty = true;

  function renderLatency(s) {
    const h = s.latency || {};
    const put = (prefix, p) => {
      setText($(prefix + '-p50'), fmtUs(p ? p.p50 : null));
      setText($(prefix + '-p95'), fmtUs(p ? p.p95 : null));
      setText($(prefix + '-p99'), fmtUs(p ? p.p99 : null));
    };
    put('fwd', h.forward);
    put('acc', h.access);
    if (h.window_s) setText($('window'), String(h.window_s));
    const c = s.clients || {};
    setText($('m2e-mean'), fmtUs(c.m2e_us));
    setText($('m2e-jitter'), fmtUs(c.jitter_us));
    setText($('m2e-loss'), c.loss_pct === null || c.loss_pct === undefined ? '—' : c.loss_pct + ' %');
    const p = s.point;
    if (p && (history.length === 0 || p.t > history[history.length - 1].t)) {
      history.push(p);
      if (history.length > HISTORY_SECS) history.splice(0, history.length - HISTORY_SECS);
      chartsDirty = true;
    }
  }

  const SERIES = [
    { color: '--p50', index: 0 },
    { color: '--p95', index: 1 },
    { color: '--p99', index: 2 },
  ];

  // Draws one chart: the last five minutes, one point a second, lines broken
  // where a second had no observation. Linear scale from 0 to a round
  // ceiling above the highest point shown.
  function drawChart(canvas, pick, series) {
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ctx = canvas.getContext('2d');
    const css = getComputedStyle(document.documentElement);
    ctx.clearRect(0, 0, w, h);
    const now = history.length ? history[history.length - 1].t : 0;
    let max = 0;
    for (const p of history) {
      const v = pick(p);
      if (!v) continue;
      for (const s of series) max = Math.max(max, s.index === null ? v : v[s.index]);
    }
    const top = niceCeiling(max);
    const pad = 4 * ratio;
    const x = (t) => pad + ((t - (now - HISTORY_SECS)) / HISTORY_SECS) * (w - 2 * pad);
    const y = (v) => h - pad - (v / top) * (h - 2 * pad);
    // Grid: the ceiling and half of it, labelled.
    ctx.strokeStyle = css.getPropertyValue('--line');
    ctx.fillStyle = css.getPropertyValue('--dim');
    ctx.lineWidth = 1;
    ctx.font = Math.round(11 * ratio) + 'px sans-serif';
    for (const f of [0.5, 1]) {
      ctx.beginPath();
      ctx.moveTo(pad, y(top * f));
      ctx.lineTo(w - pad, y(top * f));
      ctx.stroke();
      ctx.fillText(fmtUs(top * f), pad + 2 * ratio, y(top * f) + 12 * ratio);
    }
    ctx.lineWidth = 2 * ratio;
    for (const s of series) {
      const color = css.getPropertyValue(s.color);
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.beginPath();
      // Runs of consecutive seconds are lines; a second alone is a dot.
      let run = [];
      const flush = () => {
        if (run.length === 1) {
          ctx.fillRect(run[0][0] - 2 * ratio, run[0][1] - 2 * ratio, 4 * ratio, 4 * ratio);
        } else if (run.length > 1) {
          ctx.moveTo(run[0][0], run[0][1]);
          for (const [px, py] of run.slice(1)) ctx.lineTo(px, py);
        }
        run = [];
      };
      let previous = null;
      for (const p of history) {
        const v = pick(p);
        const value = v === null || v === undefined ? null : (s.index === null ? v : v[s.index]);
        if (value === null || (previous !== null && p.t - previous > 1)) flush();
        if (value !== null) {
          run.push([x(p.t), y(value)]);
          previous = p.t;
        }
      }
      flush();
      ctx.stroke();
    }
  }

  function niceCeiling(v) {
    if (!(v > 0)) return 100;
    const exp = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * exp) return m * exp;
    return 10 * exp;
  }

  function drawCharts() {
    if (!chartsDirty || document.hidden) return;
    chartsDirty = false;
    const started = performance.now();
    drawChart($('chart-fwd'), (p) => p.fwd, SERIES);
    drawChart($('chart-acc'), (p) => p.acc, SERIES);
    drawChart($('chart-m2e'), (p) => p.m2e, [{ color: '--mean', index: null }]);
    stats.drawMs = performance.now() - started;
  }

  window.addEventListener('resize', () => { chartsDirty = true; requestAnimationFrame(drawCharts); });

  // ---- terminals online --------------------------------------------------

  const last = {};
  // Rebuilds a small list only when its data changed.
  function changed(key, value) {
    const text = JSON.stringify(value);
    if (last[key] === text) return false;
    last[key] = text;
    return true;
  }

  function countItem(c, bar) {
    const li = el('li');
    li.append(el('span', 'name', c.name));
    const n = el('span', 'n');
    n.append(el('b', '', String(c.online)), document.createTextNode(' / ' + c.total));
    li.append(n);
    if (bar) {
      const b = el('span', 'bar');
      const fill = el('i');
      fill.style.width = (c.total ? (100 * c.online) / c.total : 0) + '%';
      b.append(fill);
      li.append(b);
    }
    return li;
  }

  function renderOnline(o) {
    setText($('online-total'), String(o.total));
    setText($('online-of'), String(o.of));
    if (changed('roles', o.roles)) $('roles').replaceChildren(...o.roles.map((c) => countItem(c, true)));
    if (changed('orgs', o.organisations)) {
      $('orgs').replaceChildren(...o.organisations.map((c) => countItem(c, false)));
    }
  }

  // ---- alerts ------------------------------------------------------------

  function renderAlerts(alerts) {
    if (!changed('alerts', alerts)) return;
    const list = $('alerts');
    if (alerts.length === 0) return list.replaceChildren(el('li', 'empty', 'No alerts'));
    list.replaceChildren(...alerts.map((a) => {
      const li = el('li', 'alert');
      li.dataset.alert = String(a.id);
      const head = el('div', 'a-head');
      head.append(el('span', '', a.from || 'dispatcher'), el('span', '', fmtTime(a.at_ms)));
      const tally = el('div', 'a-tally');
      const part = (cls, n, label) => {
        const s = el('span', cls);
        s.append(el('b', '', String(n)), document.createTextNode(' ' + label));
        return s;
      };
      const targets = a.targets === null ? '' : ' / ' + a.targets;
      tally.append(
        part('a-delivered', a.delivered, 'seen' + targets),
        part('a-responding', a.responding, 'responding'),
        part('a-unable', a.unable, 'unable'),
      );
      li.append(head, el('div', 'a-text', a.text), tally);
      if (a.not_reached.length > 0) {
        const where = a.not_reached.map(([name, missing, of]) => `${name} ${missing}/${of}`);
        li.append(el('div', 'a-missing', 'not reached: ' + where.join(', ')));
      }
      if (a.silent.length > 0) {
        const more = a.silent_count > a.silent.length ? ' +' + (a.silent_count - a.silent.length) + ' more' : '';
        li.append(el('div', 'a-missing a-silent', 'no answer: ' + a.silent.join(', ') + more));
      }
      return li;
    }));
  }

  // ---- regroupings -------------------------------------------------------

  const REASONS = {
    'zone-entered': 'patrol near',
    'zone-left': 'patrol moved on',
    'backup': 'backup call',
    'backup-cleared': 'emergency cleared',
  };

  function renderRegroups(regroups) {
    if (!changed('regroups', regroups)) return;
    const list = $('regroups');
    if (regroups.length === 0) return list.replaceChildren(el('li', 'empty', 'No regroupings yet'));
    list.replaceChildren(...regroups.map((r) => {
      const li = el('li', 'regroup ' + (r.added ? 'added' : 'removed'));
      li.dataset.regroup = String(r.id);
      const who = el('div', 'r-who');
      who.append(
        el('b', '', (r.added ? '+ ' : '− ') + (r.terminal_name || 'terminal ' + r.terminal)),
        document.createTextNode(' ' + (r.added ? '→ ' : '← ') + (r.group_name || 'group ' + r.group)),
      );
      const why = [r.zone_name, REASONS[r.reason] || r.reason, fmtTime(r.at_ms)].filter((s) => s);
      li.append(who, el('div', 'r-why', why.join(' · ')));
      return li;
    }));
  }

  // ---- bursts and the player ---------------------------------------------

  const player = $('player');
  let playing = null; // the burst id loaded in the player

  function renderBursts(bursts) {
    if (!changed('bursts', bursts)) return;
    const list = $('bursts');
    if (bursts.length === 0) return list.replaceChildren(el('li', 'empty', 'No bursts yet'));
    list.replaceChildren(...bursts.map((b) => {
      const li = el('li', 'burst' + (b.kind === 'emergency' ? ' emergency-kind' : ''));
      li.dataset.burst = String(b.id);
      const button = el('button', 'play');
      button.type = 'button';
      if (b.recording) {
        li.dataset.recording = b.recording;
        button.title = 'Play the recording';
        button.setAttribute('aria-label', 'Play ' + b.talker_name + ' in ' + b.group_name);
        button.addEventListener('click', () => toggle(b));
      } else {
        button.disabled = true;
        button.title = 'No recording';
      }
      const who = el('div', 'b-who');
      who.append(el('b', '', b.talker_name || 'terminal ' + b.talker));
      const where = [b.group_name || 'group ' + b.group, fmtTime(b.started_ms), b.outcome.replace(/-/g, ' ')];
      if (b.kind === 'emergency') where.unshift('EMERGENCY');
      else if (b.kind === 'broadcast') where.unshift('all-call');
      const main = el('div');
      main.append(who, el('div', 'b-when', where.join(' · ')));
      const len = el('div', 'b-len', fmtDuration(b.duration_ms));
      len.append(el('small', '', b.frames + ' frames'));
      li.append(button, main, len);
      return li;
    }));
    markPlaying();
  }

  function toggle(b) {
    if (playing === b.id && !player.paused) {
      player.pause();
      return;
    }
    if (playing !== b.id) {
      playing = b.id;
      player.src = b.recording;
    }
    player.play().catch((e) => setText($('player-state'), 'cannot play: ' + e.message));
  }

  function markPlaying() {
    for (const button of document.querySelectorAll('#bursts button.play')) {
      const id = Number(button.closest('li').dataset.burst);
      button.classList.toggle('playing', id === playing && !player.paused);
    }
  }

  for (const e of ['play', 'playing', 'pause', 'ended', 'emptied']) player.addEventListener(e, markPlaying);
  player.addEventListener('playing', () => setText($('player-state'), 'playing burst ' + playing));
  player.addEventListener('ended', () => setText($('player-state'), ''));
  player.addEventListener('error', () => {
    const code = player.error ? player.error.code : '?';
    setText($('player-state'), 'recording failed (' + code + ')');
    markPlaying();
  });

  // ---- the stream ----------------------------------------------------------

  let lastSnapshot = 0;
  // What the page costs the browser, shown in the footer and read by the
  // relay's browser test: milliseconds per snapshot applied and per chart
  // redraw.
  const stats = { snapshots: 0, renderMs: 0, maxRenderMs: 0, drawMs: 0 };
  window.dashboardStats = stats;

  function render(s, size) {
    const started = performance.now();
    lastSnapshot = Date.now();
    renderGroups(s.groups);
    renderLatency(s);
    renderOnline(s.online);
    renderAlerts(s.alerts);
    renderBursts(s.bursts);
    renderRegroups(s.regroups || []);
    setText($('private-calls'), String(s.private_calls || 0));
    // In a cluster: this relay, then every relay heard with its terminals
    // and the floors it decides.
    setText($('relay'), s.relay ? 'relay ' + s.relay + ' · cluster: ' + (s.relays || [])
      .map((r) => r.relay + ' ' + r.terminals + ' online, ' + r.decides.length + ' floors').join(' · ') : '');
    $('stat-private').classList.toggle('active', s.private_calls > 0);
    setText($('clock'), fmtTime(s.at_ms));
    setText($('updated'), fmtTime(s.at_ms));
    setText($('size'), fmtBytes(size));
    setText($('cost'), fmtUs(s.sample_us));
    stats.snapshots += 1;
    stats.renderMs = performance.now() - started;
    stats.maxRenderMs = Math.max(stats.maxRenderMs, stats.renderMs);
    setText($('render'), stats.renderMs.toFixed(1) + ' ms + charts ' + stats.drawMs.toFixed(1) + ' ms');
    requestAnimationFrame(drawCharts);
  }

  function setConnected(up, text) {
    const conn = $('conn');
    conn.classList.toggle('up', up);
    conn.classList.toggle('down', !up);
    setText(conn, text);
  }

  function connect() {
    const source = new EventSource('/api/v1/live');
    source.addEventListener('history', (e) => {
      history = JSON.parse(e.data).points || [];
      chartsDirty = true;
    });
    source.addEventListener('snapshot', (e) => {
      render(JSON.parse(e.data), e.data.length);
      setConnected(true, 'live');
    });
    source.addEventListener('error', () => setConnected(false, 'reconnecting…'));
  }

  // A stream that stays open but silent (a proxy holding it) shows as stale.
  setInterval(() => {
    if (lastSnapshot && Date.now() - lastSnapshot > STALE_MS) setConnected(false, 'stale');
  }, 1000);

  connect();
})();
