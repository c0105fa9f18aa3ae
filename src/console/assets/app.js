/*
 * Gregor console: one small script, no framework, no build step. Routes on location.pathname:
 *   /                                            overview
 *   /topics                                      topic list
 *   /topics/<name>                               one topic's partitions and configs
 *   /topics/<name>/partitions/<p>/messages       message browser (?offset= or ?timestamp=, &limit=)
 *   /groups                                      consumer groups
 *   /groups/<id>                                 one group's members, offsets and lag
 * Every page is drawn from the JSON under /api/. Data is inserted as text (textContent), never
 * as HTML. GET /api/session says whether security is on: then the header shows the user and a
 * sign-out form, changes carry the session's CSRF token, and a 401 (no or expired session)
 * goes to /login; without security the header says the console is open.
 */
'use strict';

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) {
    if (k === null || k === undefined) continue;
    e.append(typeof k === 'string' || typeof k === 'number' ? String(k) : k);
  }
  return e;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : String(v)) + ' ' + u[i];
}

function fmtMs(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n)) return String(ms);
  if (n < 0) return 'unlimited';
  if (n % 86400000 === 0) return n / 86400000 + ' d';
  if (n % 3600000 === 0) return n / 3600000 + ' h';
  return n + ' ms';
}

function topicHref(name) { return '/topics/' + encodeURIComponent(name); }

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let SESSION = null;

function toLogin() {
  location.href = '/login?next=' + encodeURIComponent(location.pathname);
}

async function api(path) {
  const r = await fetch('/api' + path, { headers: { Accept: 'application/json' } });
  if (r.status === 401) toLogin();
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new ApiError(r.status, (body && body.error) || ('HTTP ' + r.status));
  return body;
}

/* A change (POST/DELETE): the header tells the server the console's own page sends it. */
async function change(method, path) {
  const headers = { Accept: 'application/json', 'X-Gregor-Console': '1' };
  if (SESSION && SESSION.csrf) headers['X-Gregor-CSRF'] = SESSION.csrf;
  const r = await fetch('/api' + path, { method, headers });
  if (r.status === 401) toLogin();
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new ApiError(r.status, (body && body.error) || ('HTTP ' + r.status));
  return body;
}

function say(text) { $('status').textContent = text; }

function setTitle(text) {
  $('title').textContent = text;
  document.title = text + ' · Gregor console';
}

function showError(err) {
  const box = $('error');
  box.hidden = false;
  box.textContent = (err.status ? 'Error ' + err.status + ': ' : 'Error: ') + err.message;
}

function clearError() { $('error').hidden = true; $('error').textContent = ''; }

function table(caption, headers, rows, numeric) {
  const num = new Set(numeric || []);
  const thead = el('thead', {}, el('tr', {}, ...headers.map((h, i) =>
    el('th', { scope: 'col', class: num.has(i) ? 'num' : null, text: h }))));
  const tbody = el('tbody');
  for (const r of rows) {
    const tr = el('tr');
    r.forEach((c, i) => {
      const td = el(i === 0 ? 'th' : 'td', { class: num.has(i) ? 'num' : null });
      if (i === 0) td.setAttribute('scope', 'row');
      td.append(c instanceof Node ? c : String(c === null || c === undefined ? '–' : c));
      tr.append(td);
    });
    tbody.append(tr);
  }
  return el('div', { class: 'table-wrap' },
    el('table', {}, el('caption', { text: caption }), thead, tbody));
}

function cards(label, items) {
  const dl = el('dl', { class: 'cards', 'aria-label': label });
  for (const [k, v, cls] of items)
    dl.append(el('div', {}, el('dt', { text: k }), el('dd', { class: cls || null, text: String(v) })));
  return dl;
}

/* ---- overview ---- */

function drawChart(svg, samples) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const w = 400, h = 100;
  const max = Math.max(1, ...samples.map((s) => Math.max(s.in, s.out)));
  for (const [key, cls] of [['in', 'line-in'], ['out', 'line-out']]) {
    const pts = samples.map((s, i) =>
      (i * w / Math.max(1, samples.length - 1)).toFixed(1) + ',' + (h - s[key] * h / max).toFixed(1));
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    line.setAttribute('points', pts.join(' '));
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', key === 'in' ? '#0a58ca' : '#1a7f37');
    line.setAttribute('stroke-width', '2');
    line.setAttribute('class', cls);
    svg.append(line);
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/* An inline SVG line of values (null = gap) scaled to its own maximum; no library. */
function svgLine(values, w, h, cls, label) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', cls);
  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const max = Math.max(1, ...values.filter((v) => v !== null));
  let run = [];
  const flush = () => {
    if (run.length > 1) {
      const line = document.createElementNS(SVG_NS, 'polyline');
      line.setAttribute('points', run.join(' '));
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', '#0a58ca');
      line.setAttribute('stroke-width', '1.5');
      line.setAttribute('vector-effect', 'non-scaling-stroke');
      svg.append(line);
    }
    run = [];
  };
  values.forEach((v, i) => {
    if (v === null) { flush(); return; }
    run.push((i * w / Math.max(1, values.length - 1)).toFixed(1) + ',' + (h - 1 - v * (h - 2) / max).toFixed(1));
  });
  flush();
  return svg;
}

async function pageOverview(content) {
  setTitle('Cluster overview');
  const o = await api('/overview');
  content.append(cards('Cluster', [
    ['Cluster id', o.cluster_id],
    ['Controller', o.controller_id < 0 ? 'none' : 'broker ' + o.controller_id],
    ['Brokers', o.brokers.length],
    ['Topics', o.topics],
    ['Partitions', o.partitions],
    ['Under-replicated', o.under_replicated_partitions, o.under_replicated_partitions ? 'state-under' : null],
    ['Offline', o.offline_partitions, o.offline_partitions ? 'state-offline' : null],
  ]));
  content.append(el('h2', { text: 'Brokers' }));
  content.append(table('Brokers registered with the controller', ['Id', 'Host', 'Port', 'Rack', 'State'],
    o.brokers.map((b) => [
      String(b.id) + (b.self ? ' (this console)' : ''), b.host, b.port, b.rack || '–',
      el('span', { class: 'state-' + b.state, text: b.state === 'alive' ? 'alive' : b.state.replace('_', ' ') }),
    ]), [2]));
  content.append(el('h2', { text: 'Traffic on broker ' + o.node_id }));
  const legend = el('p', { class: 'chart-legend', id: 'rates' }, 'Measuring…');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('viewBox', '0 0 400 100');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'Bytes in and out per second, last two minutes');
  content.append(legend, svg);
  const samples = [];
  let prev = { t: performance.now(), local: o.local };
  const tick = async () => {
    let cur;
    try { cur = await api('/overview'); } catch (e) { legend.textContent = 'Cannot refresh: ' + e.message; return; }
    const now = performance.now();
    const dt = Math.max(0.001, (now - prev.t) / 1000);
    const s = { in: Math.max(0, (cur.local.bytes_in - prev.local.bytes_in) / dt),
                out: Math.max(0, (cur.local.bytes_out - prev.local.bytes_out) / dt) };
    prev = { t: now, local: cur.local };
    samples.push(s);
    if (samples.length > 60) samples.shift();
    legend.replaceChildren(el('span', { class: 'legend-in', text: 'in ' + fmtBytes(Math.round(s.in)) + '/s' }),
      ' · ', el('span', { class: 'legend-out', text: 'out ' + fmtBytes(Math.round(s.out)) + '/s' }));
    drawChart(svg, samples);
  };
  setInterval(tick, 2000);
}

/* ---- topics ---- */

function createTopicForm() {
  const name = el('input', { name: 'name', required: true, pattern: '[a-zA-Z0-9._\\-]{1,249}', autocomplete: 'off' });
  const parts = el('input', { name: 'partitions', type: 'number', min: '1', max: '10000', placeholder: 'broker default' });
  const rf = el('input', { name: 'replication_factor', type: 'number', min: '1', max: '100', placeholder: 'broker default' });
  const form = el('form', { class: 'browse', id: 'create-topic', 'aria-labelledby': 'create-heading' },
    el('label', {}, 'Name', name), el('label', {}, 'Partitions', parts),
    el('label', {}, 'Replication factor', rf), el('button', { type: 'submit', text: 'Create topic…' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const args = new URLSearchParams({ name: name.value });
    if (parts.value) args.set('partitions', parts.value);
    if (rf.value) args.set('replication_factor', rf.value);
    const what = 'Create topic "' + name.value + '" with ' + (parts.value || 'the default number of') +
      ' partitions and replication factor ' + (rf.value || '(default)') + '?';
    if (!window.confirm(what)) return;
    clearError();
    try {
      await change('POST', '/topics?' + args);
      say('Created topic ' + name.value + '.');
      location.href = topicHref(name.value);
    } catch (e) { showError(e); }
  });
  return [el('h2', { id: 'create-heading', text: 'Create a topic' }), form];
}

/* The topic's bytes in per second over the last samples, or '–' when it had no traffic. */
function sparkline(rates) {
  const known = (rates || []).filter((v) => v !== null);
  if (known.length === 0) return '–';
  const last = known[known.length - 1];
  return el('span', { class: 'spark-cell' },
    svgLine(rates, 100, 20, 'spark', 'Bytes in per second, last ' + rates.length + ' samples'),
    ' ' + fmtBytes(last) + '/s');
}

async function pageTopics(content) {
  setTitle('Topics');
  const r = await api('/topics');
  content.append(...createTopicForm());
  content.append(el('h2', { text: 'All topics' }));
  if (r.topics.length === 0) {
    content.append(el('p', { text: 'No topics yet.' }));
    return;
  }
  content.append(table(r.topics.length + ' topics', ['Topic', 'Partitions', 'Replication', 'Under-replicated', 'Offline', 'Retention', 'Size here', 'Bytes in (last minutes)'],
    r.topics.map((t) => [el('a', { href: topicHref(t.name), text: t.name }), t.partitions,
      t.replication_factor, t.under_replicated, t.offline, fmtMs(t.retention_ms),
      t.local_size === null ? 'not hosted' : fmtBytes(t.local_size), sparkline(t.bytes_in_rate)]), [1, 2, 3, 4]));
}

async function pageTopic(content, name) {
  setTitle('Topic ' + name);
  const r = await api('/topics/' + encodeURIComponent(name));
  const t = r.topic;
  content.append(cards('Topic', [['Partitions', t.partitions], ['Replication factor', t.replication_factor],
    ['Retention', fmtMs(t.retention_ms)], ['Size on broker ' + r.node_id, t.local_size === null ? 'not hosted' : fmtBytes(t.local_size)]]));
  content.append(el('h2', { text: 'Partitions' }));
  content.append(table('Partitions of ' + name + ' (offsets and sizes from broker ' + r.node_id + ')',
    ['Partition', 'Leader', 'Epoch', 'Replicas', 'ISR', 'Out of sync', 'Log start', 'Log end', 'High watermark', 'Size', 'Messages'],
    r.partitions.map((p) => [String(p.partition), p.leader < 0 ? el('span', { class: 'state-offline', text: 'offline' }) : p.leader,
      p.leader_epoch, p.replicas.join(', '), p.isr.join(', '), p.osr.length ? p.osr.join(', ') : '–',
      p.hosted ? p.log_start_offset : 'not here', p.hosted ? p.log_end_offset : '–',
      p.hosted ? p.high_watermark : '–', p.hosted ? fmtBytes(p.size) : '–',
      p.hosted ? el('a', { href: topicHref(name) + '/partitions/' + p.partition + '/messages',
        'aria-label': 'Browse messages of partition ' + p.partition, text: 'Browse' }) : '–']),
    [1, 2, 6, 7, 8, 9]));
  content.append(el('h2', { text: 'Delete this topic' }));
  const del = el('button', { type: 'button', id: 'delete-topic', text: 'Delete topic ' + name + '…' });
  del.addEventListener('click', async () => {
    const typed = window.prompt('Deleting "' + name + '" removes all its data on every broker. Type the topic name to confirm:');
    if (typed !== name) { say(typed === null ? 'Not deleted.' : 'Not deleted: the name did not match.'); return; }
    clearError();
    try {
      await change('DELETE', '/topics/' + encodeURIComponent(name));
      say('Deleted topic ' + name + '.');
      location.href = '/topics';
    } catch (e) { showError(e); }
  });
  content.append(el('p', {}, del));
  content.append(el('h2', { text: 'Configuration overrides' }));
  if (r.configs.length === 0) content.append(el('p', { text: 'None: every config has its broker default.' }));
  else content.append(table('Topic configs set on ' + name, ['Name', 'Value'], r.configs.map((c) => [c.name, c.value])));
  content.append(configForm(name));
}

/* Sets or removes one config override (AlterConfigs through the broker), after a confirmation. */
function configForm(topic) {
  const cname = el('input', { name: 'name', required: true, autocomplete: 'off', placeholder: 'retention.ms' });
  const cvalue = el('input', { name: 'value', autocomplete: 'off', placeholder: 'empty to remove' });
  const form = el('form', { class: 'browse', id: 'config-topic', 'aria-label': 'Change a config' },
    el('label', {}, 'Config', cname), el('label', {}, 'Value', cvalue),
    el('button', { type: 'submit', text: 'Change config…' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const remove = cvalue.value === '';
    const what = remove ? 'Remove the override of ' + cname.value + ' on topic "' + topic + '" (back to the broker default)?'
      : 'Set ' + cname.value + '=' + cvalue.value + ' on topic "' + topic + '"?';
    if (!window.confirm(what)) return;
    clearError();
    const args = new URLSearchParams({ name: cname.value });
    if (!remove) args.set('value', cvalue.value);
    try {
      await change(remove ? 'DELETE' : 'POST', '/topics/' + encodeURIComponent(topic) + '/configs?' + args);
      say((remove ? 'Removed ' : 'Set ') + cname.value + '.');
      location.reload();
    } catch (e) { showError(e); }
  });
  return el('div', {}, el('h3', { text: 'Change a config' }), form);
}

/* ---- messages ---- */

function renderBytes(f) {
  if (f.encoding === 'null') return el('span', { class: 'enc', text: 'null' });
  const wrap = el('div');
  let text = f.data;
  let label = f.encoding === 'hex' ? 'hex, ' + f.length + ' bytes' : null;
  if (f.encoding === 'text' && /^\s*[[{]/.test(text)) {
    try { text = JSON.stringify(JSON.parse(text), null, 2); label = 'JSON'; } catch (e) { /* not JSON */ }
  }
  if (f.encoding === 'hex') text = text.replace(/(..)/g, '$1 ').trim();
  wrap.append(el('pre', { class: 'value-' + f.encoding, text }));
  if (label || f.truncated)
    wrap.append(el('span', { class: 'enc', text: [label, f.truncated ? 'truncated' : null].filter(Boolean).join(', ') }));
  return wrap;
}

function renderHeaders(hs) {
  if (hs.length === 0) return '–';
  const ul = el('ul');
  for (const h of hs) {
    const k = h.key.encoding === 'text' ? h.key.data : '0x' + h.key.data;
    const v = h.value.encoding === 'null' ? 'null' : h.value.encoding === 'text' ? h.value.data : '0x' + h.value.data;
    ul.append(el('li', { text: k + ': ' + v }));
  }
  return ul;
}

async function pageMessages(content, name, partition) {
  setTitle('Messages of ' + name + ' partition ' + partition);
  const q = new URLSearchParams(location.search);
  const offset = q.get('offset');
  const time = q.get('timestamp');
  const limit = q.get('limit') || '20';
  const form = el('form', { class: 'browse', method: 'get', 'aria-label': 'Choose messages' },
    el('label', {}, 'Start offset', el('input', { name: 'offset', type: 'number', min: '0', inputmode: 'numeric', value: offset || '' })),
    el('label', {}, 'or from time (ms or ISO date)', el('input', { name: 'timestamp', autocomplete: 'off', value: time || '', placeholder: '2026-01-31T12:00Z' })),
    el('label', {}, 'Records per page (1–100)', el('input', { name: 'limit', type: 'number', min: '1', max: '100', value: limit })),
    el('button', { type: 'submit', text: 'Show' }));
  /* Empty fields are left out of the address: the API refuses an offset and a time together. */
  form.addEventListener('submit', () => {
    for (const i of form.querySelectorAll('input')) if (i.value === '') i.disabled = true;
  });
  content.append(el('p', {}, el('a', { href: topicHref(name), text: '← Topic ' + name })), form);
  const args = new URLSearchParams();
  if (offset !== null && offset !== '') args.set('offset', offset);
  else if (time !== null && time !== '') {
    const ms = /^\d+$/.test(time) ? time : String(Date.parse(time));
    if (ms === 'NaN') throw new ApiError(400, 'cannot read "' + time + '" as a time: give ms since 1970 or an ISO date');
    args.set('timestamp', ms);
  }
  args.set('limit', limit);
  const r = await api('/topics/' + encodeURIComponent(name) + '/partitions/' + encodeURIComponent(partition) + '/messages?' + args);
  content.append(cards('Partition', [['Log start', r.log_start_offset], ['High watermark', r.high_watermark], ['Log end', r.log_end_offset], ['Shown', r.count]]));
  if (r.error) showError({ message: r.error });
  if (r.count === 0) content.append(el('p', { text: 'No records from offset ' + r.offset + '.' }));
  else content.append(table('Records ' + r.records[0].offset + ' to ' + r.records[r.records.length - 1].offset,
    ['Offset', 'Timestamp', 'Key', 'Value', 'Headers'],
    r.records.map((m) => [String(m.offset), new Date(m.timestamp).toISOString() + ' (' + m.timestamp_type + ')',
      renderBytes(m.key), renderBytes(m.value), renderHeaders(m.headers)]), []));
  const pager = el('nav', { class: 'pager', 'aria-label': 'Pages' });
  if (r.next_offset < r.high_watermark)
    pager.append(el('a', { href: '?offset=' + r.next_offset + '&limit=' + r.limit, rel: 'next', text: 'Next page →' }));
  content.append(pager);
}

/* ---- consumer groups ---- */

function groupHref(id) { return '/groups/' + encodeURIComponent(id); }

async function pageGroups(content) {
  setTitle('Consumer groups');
  const r = await api('/groups');
  if (r.groups.length === 0) {
    content.append(el('p', { text: 'No consumer groups yet.' }));
    return;
  }
  content.append(table(r.groups.length + ' consumer groups', ['Group', 'State', 'Kind'],
    r.groups.map((g) => [el('a', { href: groupHref(g.group_id), text: g.group_id }), g.state,
      g.simple ? 'simple (offsets only)' : 'consumer group'])));
}

async function pageGroup(content, id) {
  setTitle('Consumer group ' + id);
  const g = await api('/groups/' + encodeURIComponent(id));
  const hosted = g.offsets.filter((o) => o.lag !== null);
  const lag = hosted.reduce((s, o) => s + o.lag, 0);
  content.append(cards('Group', [['State', g.state], ['Coordinator', g.coordinator < 0 ? 'unknown' : 'broker ' + g.coordinator],
    ['Members', g.members.length], ['Total lag', hosted.length ? lag : '–']]));
  content.append(el('h2', { text: 'Members' }));
  if (g.members.length === 0) content.append(el('p', { text: 'No members: nobody consumes in this group right now.' }));
  else content.append(table('Members of ' + id, ['Member', 'Client id', 'Host', 'Assigned partitions'],
    g.members.map((m) => [m.member_id, m.client_id, m.host,
      m.assignment.map((a) => a.topic + '-' + a.partition).join(', ') || '–'])));
  content.append(el('h2', { text: 'Committed offsets and lag' }));
  if (g.offsets.length === 0) content.append(el('p', { text: 'No committed offsets.' }));
  else content.append(table('Offsets of ' + id + ' (lag where this broker hosts the partition)',
    ['Topic', 'Partition', 'Committed', 'High watermark', 'Lag'],
    g.offsets.map((o) => [el('a', { href: topicHref(o.topic), text: o.topic }), o.partition, o.committed,
      o.high_watermark === null ? 'not here' : o.high_watermark, o.lag === null ? '–' : o.lag]), [1, 2, 3, 4]));
  content.append(el('h2', { text: 'Total lag, last hour' }));
  content.append(await lagChart(id));
  content.append(el('h2', { text: 'Reset offsets' }));
  content.append(resetForm(id, g));
}

async function lagChart(id) {
  let h;
  try { h = await api('/groups/' + encodeURIComponent(id) + '/lag'); } catch (e) {
    return el('p', { id: 'lag-chart', text: e.status === 404 ? 'No samples yet (one every few seconds).' : 'Cannot read the lag history: ' + e.message });
  }
  const vals = h.points.map((p) => p.lag);
  const known = vals.filter((v) => v !== null);
  const wrap = el('div', { id: 'lag-chart' });
  wrap.append(svgLine(vals, 400, 100, 'chart', 'Total lag of ' + id + ', ' + vals.length + ' samples every ' + h.interval_ms / 1000 + ' s'));
  wrap.append(el('p', { class: 'chart-legend', text: known.length ? 'now ' + known[known.length - 1] + ', max ' + Math.max(...known) +
    ' (' + vals.length + ' samples, one every ' + h.interval_ms / 1000 + ' s; lag summed over partitions this broker hosts)' : 'No lag known in these samples.' }));
  return wrap;
}

/* Resets a topic's committed offsets while the group is empty, after a confirmation. */
function resetForm(id, g) {
  if (g.state !== 'Empty' && g.state !== 'Dead')
    return el('p', { id: 'reset-offsets', text: 'Offsets can be reset only while the group is empty: it is ' + g.state + ' with ' + g.members.length + ' member(s).' });
  const topics = [...new Set(g.offsets.map((o) => o.topic))];
  const topic = el('input', { name: 'topic', required: true, autocomplete: 'off', value: topics[0] || '', list: 'reset-topics' });
  const dl = el('datalist', { id: 'reset-topics' }, ...topics.map((t) => el('option', { value: t })));
  const to = el('select', { name: 'to' }, ...['earliest', 'latest', 'offset', 'timestamp'].map((v) => el('option', { value: v, text: v })));
  const value = el('input', { name: 'value', autocomplete: 'off', placeholder: 'offset, or ms / ISO date' });
  const part = el('input', { name: 'partition', type: 'number', min: '0', placeholder: 'all' });
  const form = el('form', { class: 'browse', id: 'reset-offsets', 'aria-label': 'Reset offsets' },
    el('label', {}, 'Topic', topic, dl), el('label', {}, 'To', to), el('label', {}, 'Offset or time', value),
    el('label', {}, 'Partition', part), el('button', { type: 'submit', text: 'Reset offsets…' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const args = new URLSearchParams({ topic: topic.value, to: to.value });
    if (to.value === 'offset' || to.value === 'timestamp') {
      const v = to.value === 'timestamp' && !/^\d+$/.test(value.value) ? String(Date.parse(value.value)) : value.value;
      args.set('value', v);
    }
    if (part.value) args.set('partition', part.value);
    const where = to.value + (args.has('value') ? ' ' + args.get('value') : '');
    if (!window.confirm('Reset the committed offsets of group "' + id + '" on ' + topic.value +
      (part.value ? ' partition ' + part.value : ' (every partition)') + ' to ' + where + '?')) return;
    clearError();
    try {
      const r = await change('POST', '/groups/' + encodeURIComponent(id) + '/offsets?' + args);
      say('Reset: ' + r.offsets.map((o) => 'partition ' + o.partition + ' → ' + o.offset).join(', ') + '.');
      location.reload();
    } catch (e) { showError(e); }
  });
  return form;
}

/* ---- session ---- */

/* Who is signed in (a sign-out form) or, without security, that the console is open. */
async function drawSession() {
  SESSION = await api('/session');
  const box = el('div', { id: 'session', class: 'session' });
  if (SESSION.security) {
    box.append(el('span', { id: 'session-user', text: 'Signed in as ' + SESSION.user }),
      el('form', { id: 'logout-form', method: 'post', action: '/logout' },
        el('input', { type: 'hidden', name: 'csrf', value: SESSION.csrf }),
        el('button', { type: 'submit', id: 'logout', text: 'Sign out' })));
  } else {
    box.append(el('span', { id: 'open-notice', class: 'open-notice', text: SESSION.notice }));
  }
  document.querySelector('header').append(box);
}

/* ---- routing ---- */

async function route() {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const content = $('content');
  clearError();
  const nav = { topics: 'nav-topics', groups: 'nav-groups' }[parts[0]] || 'nav-overview';
  $(nav).setAttribute('aria-current', 'page');
  try {
    await drawSession();
    if (parts.length === 0) await pageOverview(content);
    else if (parts.length === 1 && parts[0] === 'topics') await pageTopics(content);
    else if (parts.length === 2 && parts[0] === 'topics') await pageTopic(content, parts[1]);
    else if (parts.length === 5 && parts[0] === 'topics' && parts[2] === 'partitions' && parts[4] === 'messages')
      await pageMessages(content, parts[1], parts[3]);
    else if (parts.length === 1 && parts[0] === 'groups') await pageGroups(content);
    else if (parts.length === 2 && parts[0] === 'groups') await pageGroup(content, parts[1]);
    else throw new ApiError(404, 'no such page: ' + path);
  } catch (e) {
    showError(e);
  }
  /* Milliseconds from navigation to a drawn page, for bench/console.py. */
  document.body.setAttribute('data-ready-ms', String(Math.round(performance.now())));
  document.body.setAttribute('data-ready', 'true');
}

route();
