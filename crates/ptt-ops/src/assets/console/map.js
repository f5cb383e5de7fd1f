// The district map: an inline SVG drawn from the directory's zones
// (/api/v1/zones) with a live marker per terminal that reported a position.
//
// No tile server is needed: the zones are the map. A site that has one
// (`console-tiles`) gets its Web-Mercator tiles under the zones, each tile
// placed by its corners, so streets and zones line up. Coordinates are
// metres on an equirectangular projection around the district's centre
// (x east, y south, as SVG's y grows downwards), exact enough for a few
// kilometres (across one tile the two projections differ by far less than
// a pixel). Zones are
// drawn once; a LocationReport only moves its marker (a `transform` and two
// data attributes), coalesced to one DOM write per marker per frame, so 150
// terminals reporting every second cost next to nothing.

const SVG_NS = 'http://www.w3.org/2000/svg';
const M_PER_DEG = 111320; // metres per degree of latitude (and of longitude at the equator)
const KIND_ORDER = ['area', 'key-area', 'route-segment', 'premises'];
const ROLES = ['dispatcher', 'police', 'patrol', 'guard', 'volunteer', 'other'];
const EARTH_CIRCUMFERENCE_M = 40075016.686; // at the equator, as Web-Mercator tiles count it
const TILE_PX = 256; // a tile's side in pixels
const MAX_ZOOM = 19; // the deepest level tile servers commonly have
const MAX_TILES = 64; // at most this many tiles at once: a coarser level beyond it

// Web-Mercator tile numbers (the slippy-map convention) and back.
function lonToTile(lon, z) {
  return Math.floor(((lon + 180) / 360) * 2 ** z);
}
function latToTile(lat, z) {
  const r = (lat * Math.PI) / 180;
  return Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * 2 ** z);
}
function tileToLon(x, z) {
  return (x / 2 ** z) * 360 - 180;
}
function tileToLat(y, z) {
  return (Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / 2 ** z))) * 180) / Math.PI;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function round(v) {
  return Math.round(v * 10) / 10;
}

/**
 * The map in `root` (an <svg>). `onError(message)` shows what went wrong
 * (e.g. a zone without a usable shape), as a blank map explains nothing.
 */
export class DistrictMap {
  constructor(root, { onError }) {
    this.root = root;
    this.onError = onError;
    this.origin = null; // { lat, lon, cosLat } once zones (or a first fix) set it
    this.unit = 20; // a length for labels, in metres, from the district's size
    this.home = null; // the fitted viewBox [x, y, w, h]
    this.view = null; // the current one (zoomed, panned)
    this.markers = new Map(); // terminal id → { g, label, lat, lon, role }
    this.terminals = new Map(); // terminal id → { name, role }
    this.pending = new Map(); // terminal id → [lat, lon] not drawn yet
    this.scheduled = false;
    this.backups = new Map(); // group id → <circle>
    this.states = new Map(); // terminal id → Set of state classes, kept for markers not drawn yet
    this.tiles = null; // the tile URL template, or null: zones only
    this.tileImages = new Map(); // "z/x/y" → <image> on the map now
    this.tilesScheduled = false;
    this.tilesFailed = false; // told the dispatcher once per session
    root.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    this.tileLayer = svg('g', { class: 'tiles' });
    this.zoneLayer = svg('g', { class: 'zones' });
    this.backupLayer = svg('g', { class: 'backups' });
    this.markerLayer = svg('g', { class: 'markers' });
    root.replaceChildren(this.tileLayer, this.zoneLayer, this.backupLayer, this.markerLayer);
    this.enableZoom();
    new ResizeObserver(() => {
      this.scaleMarkers();
      this.scheduleTiles();
    }).observe(root);
  }

  /** Clears everything drawn, for a new session (the directory may have changed). */
  reset() {
    this.tileLayer.replaceChildren();
    this.tileImages.clear();
    this.tilesFailed = false;
    this.zoneLayer.replaceChildren();
    this.backupLayer.replaceChildren();
    this.markerLayer.replaceChildren();
    this.markers.clear();
    this.pending.clear();
    this.states.clear();
    this.backups.clear();
    this.origin = null;
  }

  /** Projects WGS-84 degrees to map metres. */
  project(lat, lon) {
    const o = this.origin;
    return [(lon - o.lon) * M_PER_DEG * o.cosLat, (o.lat - lat) * M_PER_DEG];
  }

  /** Map metres back to WGS-84 degrees, [lat, lon]. */
  unproject(x, y) {
    const o = this.origin;
    return [o.lat - y / M_PER_DEG, o.lon + x / (M_PER_DEG * o.cosLat)];
  }

  /**
   * The site's tile server: `template` has `{z}`, `{x}` and `{y}` (the
   * relay checked it), or is null for the zones alone. Each tile becomes an
   * `<image data-tile="z/x/y">` under the zones, `data-loaded` once it came.
   */
  setTiles(template) {
    this.tiles = template || null;
    this.tileLayer.replaceChildren();
    this.tileImages.clear();
    this.root.classList.toggle('with-tiles', this.tiles !== null);
    this.scheduleTiles();
  }

  // Tiles follow the view at most once a frame, however fast it zooms.
  scheduleTiles() {
    if (!this.tiles || this.tilesScheduled) return;
    this.tilesScheduled = true;
    requestAnimationFrame(() => {
      this.tilesScheduled = false;
      this.drawTiles();
    });
  }

  // The tiles that cover what the map shows, at the level whose pixels are
  // closest to the screen's; those no longer in view are dropped.
  drawTiles() {
    if (!this.tiles || !this.origin || !this.view) return;
    const box = this.root.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return;
    const [x, y, w, h] = this.view;
    const perPx = Math.max(w / box.width, h / box.height);
    const [cx, cy] = [x + w / 2, y + h / 2];
    const [halfW, halfH] = [(box.width * perPx) / 2, (box.height * perPx) / 2];
    const [north, west] = this.unproject(cx - halfW, cy - halfH);
    const [south, east] = this.unproject(cx + halfW, cy + halfH);
    const worldPx = (EARTH_CIRCUMFERENCE_M * this.origin.cosLat) / perPx;
    let z = Math.min(MAX_ZOOM, Math.max(0, Math.round(Math.log2(worldPx / TILE_PX))));
    let xs;
    let ys;
    for (;;) {
      xs = [lonToTile(west, z), lonToTile(east, z)];
      ys = [Math.max(0, latToTile(north, z)), Math.min(2 ** z - 1, latToTile(south, z))];
      if ((xs[1] - xs[0] + 1) * (ys[1] - ys[0] + 1) <= MAX_TILES || z === 0) break;
      z -= 1;
    }
    const wanted = new Set();
    for (let tx = xs[0]; tx <= xs[1]; tx++) {
      for (let ty = ys[0]; ty <= ys[1]; ty++) {
        const key = z + '/' + tx + '/' + ty;
        wanted.add(key);
        if (!this.tileImages.has(key)) this.addTile(key, z, tx, ty);
      }
    }
    for (const [key, img] of this.tileImages) {
      if (!wanted.has(key)) {
        img.remove();
        this.tileImages.delete(key);
      }
    }
  }

  addTile(key, z, tx, ty) {
    const [x0, y0] = this.project(tileToLat(ty, z), tileToLon(tx, z));
    const [x1, y1] = this.project(tileToLat(ty + 1, z), tileToLon(tx + 1, z));
    const img = svg('image', {
      x: x0.toFixed(2), y: y0.toFixed(2),
      width: (x1 - x0).toFixed(2), height: (y1 - y0).toFixed(2),
      preserveAspectRatio: 'none',
    });
    img.dataset.tile = key;
    img.addEventListener('load', () => { img.dataset.loaded = 'true'; });
    img.addEventListener('error', () => {
      img.classList.add('tile-failed');
      if (this.tilesFailed) return;
      this.tilesFailed = true;
      this.onError('Map tiles unavailable from ' + new URL(this.tiles).host + ': the zones are still drawn');
    });
    const n = 2 ** z;
    const fill = { z, x: ((tx % n) + n) % n, y: ty };
    img.setAttribute('href', this.tiles.replace(/\{([zxy])\}/g, (_, k) => String(fill[k])));
    this.tileImages.set(key, img);
    this.tileLayer.append(img);
  }

  /**
   * Draws the zones of /api/v1/zones and fits the view to them: each shape
   * gets `data-zone` and a class for its kind (`zone-area`, `zone-premises`,
   * `zone-key-area`, `zone-route-segment`), so tests and CSS find them.
   */
  setZones(zones) {
    const shaped = zones.filter((z) => z.shape);
    const points = [];
    for (const z of shaped) {
      if (z.shape.circle) points.push([z.shape.circle.lat, z.shape.circle.lon]);
      else if (Array.isArray(z.shape.polygon)) points.push(...z.shape.polygon);
    }
    if (points.length === 0) {
      this.onError('The directory has no zone shapes: the map shows terminals only');
      this.flush();
      return;
    }
    const lats = points.map((p) => p[0]);
    const lons = points.map((p) => p[1]);
    const lat = (Math.min(...lats) + Math.max(...lats)) / 2;
    const lon = (Math.min(...lons) + Math.max(...lons)) / 2;
    this.setOrigin(lat, lon);
    const byKind = (z) => {
      const i = KIND_ORDER.indexOf(z.kind);
      return i < 0 ? KIND_ORDER.length : i;
    };
    const drawn = [];
    for (const z of shaped.sort((a, b) => byKind(a) - byKind(b) || a.id - b.id)) {
      const cls = 'zone zone-' + String(z.kind).replace(/[^a-z-]/g, '');
      let shape;
      if (z.shape.circle) {
        const c = z.shape.circle;
        const [x, y] = this.project(c.lat, c.lon);
        shape = svg('circle', { class: cls, cx: round(x), cy: round(y), r: c.radius_m });
        drawn.push([x - c.radius_m, y - c.radius_m], [x + c.radius_m, y + c.radius_m]);
      } else {
        const xy = z.shape.polygon.map(([la, lo]) => this.project(la, lo));
        shape = svg('polygon', { class: cls, points: xy.map(([x, y]) => round(x) + ',' + round(y)).join(' ') });
        drawn.push(...xy);
      }
      shape.dataset.zone = String(z.id);
      shape.append(svg('title', {}, z.name + ' (' + z.kind + ')'));
      this.zoneLayer.append(shape);
    }
    this.fit(drawn);
    // Area names last, above every shape.
    for (const z of shaped.filter((s) => s.kind === 'area' && s.shape.polygon)) {
      const xy = z.shape.polygon.map(([la, lo]) => this.project(la, lo));
      const cx = xy.reduce((s, p) => s + p[0], 0) / xy.length;
      const cy = xy.reduce((s, p) => s + p[1], 0) / xy.length;
      this.zoneLayer.append(svg('text', {
        class: 'zone-label', x: round(cx), y: round(cy), 'font-size': round(this.unit * 3.5),
      }, z.name));
    }
    this.flush();
  }

  setOrigin(lat, lon) {
    this.origin = { lat, lon, cosLat: Math.cos((lat * Math.PI) / 180) };
  }

  fit(xy) {
    const xs = xy.map((p) => p[0]);
    const ys = xy.map((p) => p[1]);
    const w = Math.max(...xs) - Math.min(...xs);
    const h = Math.max(...ys) - Math.min(...ys);
    const pad = Math.max(w, h) * 0.03 + 10;
    this.home = [Math.min(...xs) - pad, Math.min(...ys) - pad, w + 2 * pad, h + 2 * pad];
    this.unit = Math.max(4, Math.max(w, h) / 260);
    this.setView(this.home);
  }

  setView(v) {
    this.view = v;
    this.root.setAttribute('viewBox', v.map(round).join(' '));
    // Markers keep their size on screen when zoomed (CSS scales them back),
    // so guards standing together come apart as the dispatcher zooms in.
    this.scaleMarkers();
    this.scheduleTiles();
  }

  // Markers are drawn in screen pixels (a 5 px dot, 11 px names) and scaled
  // by the metres one pixel shows now, so they keep their size whatever the
  // zoom or the window: guards standing together come apart as one zooms in.
  scaleMarkers() {
    if (!this.view) return;
    const box = this.root.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return;
    const perPx = Math.max(this.view[2] / box.width, this.view[3] / box.height);
    this.root.style.setProperty('--marker-scale', perPx.toFixed(4));
  }

  /**
   * Names and roles of the directory's terminals (/api/v1/terminals), for
   * the markers' labels and colours (class `role-<role>`).
   */
  setTerminals(list) {
    for (const t of list) {
      this.terminals.set(t.id, { name: t.name, role: ROLES.includes(t.role) ? t.role : 'other' });
      const m = this.markers.get(t.id);
      if (m) this.label(t.id, m);
    }
  }

  /**
   * A terminal reported `lat`, `lon`: its marker moves at the next frame
   * (created on its first report). Cheap to call at any rate.
   */
  move(id, lat, lon) {
    this.pending.set(id, [lat, lon]);
    if (this.scheduled) return;
    this.scheduled = true;
    // A hidden tab gets no animation frames; the markers still follow.
    if (document.hidden) setTimeout(() => this.flush(), 250);
    else requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    if (!this.origin) {
      if (this.home === null && this.zonesFailed) {
        // No zones: centre on the first terminal and show 4 km around it.
        const [lat, lon] = this.pending.values().next().value;
        this.setOrigin(lat, lon);
        this.unit = 15;
        this.home = [-2000, -2000, 4000, 4000];
        this.setView(this.home);
      } else {
        return; // drawn once the zones are in
      }
    }
    for (const [id, [lat, lon]] of this.pending) {
      let m = this.markers.get(id);
      if (!m) m = this.createMarker(id);
      const [x, y] = this.project(lat, lon);
      m.g.setAttribute('transform', 'translate(' + round(x) + ' ' + round(y) + ')');
      m.g.dataset.lat = lat.toFixed(6);
      m.g.dataset.lon = lon.toFixed(6);
      m.lat = lat;
      m.lon = lon;
    }
    this.pending.clear();
    for (const [gid, c] of this.backups) this.placeBackup(gid, c);
  }

  /** The zones could not be loaded: markers are drawn around the first fix. */
  zonesUnavailable() {
    this.zonesFailed = true;
    this.flush();
  }

  createMarker(id) {
    const g = svg('g', { class: 'marker' });
    g.dataset.terminal = String(id);
    const body = svg('g', { class: 'marker-body' });
    const dot = svg('circle', { r: 5 });
    const text = svg('text', { x: 7, y: 4, 'font-size': 11 });
    const title = svg('title');
    body.append(dot, text);
    g.append(body, title);
    for (const cls of this.states.get(id) || []) g.classList.add(cls);
    const m = { g, text, title, lat: 0, lon: 0, role: null };
    this.markers.set(id, m);
    this.label(id, m);
    this.markerLayer.append(g);
    return m;
  }

  label(id, m) {
    const t = this.terminals.get(id) || { name: 'terminal ' + id, role: 'other' };
    if (m.role !== t.role) {
      if (m.role) m.g.classList.remove('role-' + m.role);
      m.g.classList.add('role-' + t.role);
      m.role = t.role;
    }
    m.text.textContent = t.name;
    m.title.textContent = t.name + ' (' + t.role + ', id ' + id + ')';
  }

  /** Toggles a state class (`talking`, `emergency`, `pulled`, `offline`) on a terminal's marker. */
  mark(id, cls, on) {
    let states = this.states.get(id);
    if (on) {
      if (!states) this.states.set(id, (states = new Set()));
      states.add(cls);
    } else if (states) {
      states.delete(cls);
    }
    const m = this.markers.get(id);
    if (m) m.g.classList.toggle(cls, on);
  }

  /** Where a terminal's marker stands now, or null. */
  position(id) {
    const p = this.pending.get(id);
    if (p) return { lat: p[0], lon: p[1] };
    const m = this.markers.get(id);
    return m ? { lat: m.lat, lon: m.lon } : null;
  }

  /**
   * Draws (or, with `centre` null, removes) the backup-call radius of group
   * `groupId`'s emergency: `circle.backup-radius` of `radiusM` metres
   * around `centre` ({lat, lon}), so the dispatcher sees which compounds'
   * guards a backup call pulls in.
   */
  setBackup(groupId, centre, radiusM) {
    let c = this.backups.get(groupId);
    if (!centre) {
      if (c) c.el.remove();
      this.backups.delete(groupId);
      return;
    }
    if (!c) {
      const e = svg('circle', { class: 'backup-radius' });
      e.dataset.backupGroup = String(groupId);
      e.append(svg('title', {}, 'Backup-call radius, ' + radiusM + ' m'));
      c = { el: e };
      this.backups.set(groupId, c);
      this.backupLayer.append(e);
    }
    Object.assign(c, { lat: centre.lat, lon: centre.lon, r: radiusM });
    this.placeBackup(groupId, c);
  }

  placeBackup(groupId, c) {
    if (!this.origin) return;
    const [x, y] = this.project(c.lat, c.lon);
    c.el.setAttribute('cx', String(round(x)));
    c.el.setAttribute('cy', String(round(y)));
    c.el.setAttribute('r', String(c.r));
    c.el.dataset.radiusM = String(c.r);
  }

  /** Wheel zooms around the pointer, dragging pans, a double click fits the district again. */
  enableZoom() {
    const toMap = (ev) => {
      const box = this.root.getBoundingClientRect();
      const [x, y, w, h] = this.view;
      const scale = Math.max(w / box.width, h / box.height);
      const ox = x + (w - box.width * scale) / 2;
      const oy = y + (h - box.height * scale) / 2;
      return { x: ox + (ev.clientX - box.left) * scale, y: oy + (ev.clientY - box.top) * scale, scale };
    };
    this.root.addEventListener('wheel', (ev) => {
      if (!this.view) return;
      ev.preventDefault();
      const p = toMap(ev);
      const f = ev.deltaY > 0 ? 1.25 : 0.8;
      const [x, y, w, h] = this.view;
      if (f < 1 && w < 200) return;
      this.setView([p.x - (p.x - x) * f, p.y - (p.y - y) * f, w * f, h * f]);
    }, { passive: false });
    let drag = null;
    this.root.addEventListener('pointerdown', (ev) => {
      if (!this.view || ev.button !== 0) return;
      drag = { x: ev.clientX, y: ev.clientY, view: this.view, scale: toMap(ev).scale };
      this.root.setPointerCapture(ev.pointerId);
    });
    this.root.addEventListener('pointermove', (ev) => {
      if (!drag) return;
      const [x, y, w, h] = drag.view;
      this.setView([x - (ev.clientX - drag.x) * drag.scale, y - (ev.clientY - drag.y) * drag.scale, w, h]);
    });
    const end = () => { drag = null; };
    this.root.addEventListener('pointerup', end);
    this.root.addEventListener('pointercancel', end);
    this.root.addEventListener('dblclick', () => { if (this.home) this.setView(this.home); });
  }
}
