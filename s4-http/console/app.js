// S4 console: a single-page app over the public REST + SSE API under /api.
// Hash routes (#/browse/s3/<bucket>/<folder>...) give every location and folder a
// URL, so reload, the back button and shared links work.

const BASE = document.querySelector('meta[name="s4-base"]').content;
const API = BASE + '/api';
const main = document.getElementById('main');
const dialog = document.getElementById('dialog');

const state = {
  authRequired: false,
  user: null,
  pageSize: 100,
  tokens: new Map(), // listing key -> continuation tokens of pages 2..n
  expiryTimer: null,
};
let cleanups = [];

// ---------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key === 'value') node.value = value;
    else if (key === 'checked') node.checked = !!value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function b64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fmtSize(bytes) {
  if (bytes === undefined || bytes === null) return '';
  if (bytes === 0) return '0 Bytes';
  const units = ['Bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];
  const i = Math.min(units.length - 1, Math.floor(Math.log(bytes) / Math.log(1024)));
  return i === 0 ? `${bytes} Bytes` : `${(bytes / 1024 ** i).toFixed(2)} ${units[i]}`;
}

function fmtDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

class ApiError extends Error {
  constructor(status, body) {
    const message = (body && typeof body === 'object' && (body.message || body.error)) || (typeof body === 'string' && body) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body, options = {}) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (response.status === 401 && state.authRequired && !options.noExpire) sessionExpired();
  if (!response.ok && response.status !== 207) throw new ApiError(response.status, data);
  return data;
}

function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : null },
    h('span', { class: 'msg' }, message),
    h('button', { type: 'button', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'));
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 15000 : 8000);
  while (box.children.length > 6) box.firstChild.remove();
}

function fail(error) {
  toast(error instanceof Error ? error.message : String(error), 'error');
}

/** Runs `fn`, reporting its result message (or error) as a toast. */
async function act(fn, success) {
  try {
    const result = await fn();
    const message = typeof success === 'function' ? success(result) : success || (result && result.message);
    if (message) toast(message);
    return result;
  } catch (e) {
    fail(e);
    return undefined;
  }
}

function go(hash) {
  if (location.hash === hash) render(); else location.hash = hash;
}

function enc(segments) {
  return segments.filter((s) => s !== '').map(encodeURIComponent).join('/');
}

function browseHref(type, id, path, query) {
  const segs = (path || '').split('/').filter(Boolean);
  const q = query ? `?${query}` : '';
  return `#/browse/${type}/${encodeURIComponent(id)}${segs.length ? '/' + enc(segs) : ''}${q}`;
}

function viewHref(type, id, path) {
  return `#/view/${type}/${encodeURIComponent(id)}/${enc(path.split('/'))}`;
}

function downloadUrl(type, id, path) {
  return type === 's3' ? `${API}/objects/download/${encodeURIComponent(id)}/${b64(path)}` : `${API}/local/download/${encodeURIComponent(id)}/${b64(path)}`;
}

function leaf(path) {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

// ---------------------------------------------------------------- dialogs

function openDialog(build) {
  return new Promise((resolve) => {
    let result;
    const done = (value) => { result = value; dialog.close(); };
    dialog.replaceChildren(...build(done));
    const onClose = () => { dialog.removeEventListener('close', onClose); resolve(result); };
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    const first = dialog.querySelector('input, select, textarea, button.primary');
    if (first) first.focus();
  });
}

/** A confirmation; with `typed`, the user must type that text to enable the button. */
function confirmDialog({ title, message, confirmLabel = 'Delete', typed }) {
  return openDialog((done) => {
    const confirm = h('button', { type: 'submit', class: 'danger primary', disabled: !!typed, 'data-confirm': '' }, confirmLabel);
    const input = typed ? h('input', { type: 'text', 'aria-label': 'Confirmation', autocomplete: 'off', 'data-confirm-input': '',
      oninput: () => { confirm.disabled = input.value !== typed; } }) : null;
    const form = h('form', { method: 'dialog', onsubmit: (e) => { e.preventDefault(); if (!confirm.disabled) done(true); } },
      h('h2', {}, title), h('p', {}, message),
      typed ? h('label', {}, h('span', {}, 'Type ', h('strong', {}, typed), ' to confirm'), input) : null,
      h('div', { class: 'buttons' }, h('button', { type: 'button', class: 'ghost', onclick: () => done(false) }, 'Cancel'), confirm));
    if (!typed) setTimeout(() => confirm.focus());
    return [form];
  });
}

function promptDialog({ title, label, confirmLabel = 'OK', value = '' }) {
  return openDialog((done) => {
    const input = h('input', { type: 'text', value, required: true, 'data-prompt-input': '' });
    const form = h('form', { onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) done(input.value.trim()); } },
      h('h2', {}, title), h('label', {}, label, input),
      h('div', { class: 'buttons' }, h('button', { type: 'button', class: 'ghost', onclick: () => done(null) }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary', 'data-confirm': '' }, confirmLabel)));
    return [form];
  });
}

// ---------------------------------------------------------------- auth

function setSession(expiresInSecs) {
  const until = Date.now() + expiresInSecs * 1000;
  localStorage.setItem('s4.session', String(until));
  clearTimeout(state.expiryTimer);
  state.expiryTimer = setTimeout(sessionExpired, Math.min(expiresInSecs * 1000, 2 ** 31 - 1));
}

function sessionExpired() {
  if (!state.user) return;
  state.user = null;
  localStorage.removeItem('s4.session');
  clearTimeout(state.expiryTimer);
  updateHeader();
  toast('Your session has expired. Please log in again.', 'error');
  const next = location.hash.startsWith('#/login') ? '' : location.hash;
  go('#/login' + (next ? `?next=${encodeURIComponent(next)}` : ''));
}

function updateHeader() {
  const top = document.getElementById('top');
  top.hidden = !state.user;
  document.getElementById('user').textContent = state.user ? state.user.username : '';
  document.getElementById('logout').hidden = !(state.user && state.authRequired);
}

async function logout() {
  await act(() => api('POST', '/auth/logout', undefined, { noExpire: true }));
  state.user = null;
  localStorage.removeItem('s4.session');
  clearTimeout(state.expiryTimer);
  updateHeader();
  go('#/login');
}

function loginPage(query) {
  const error = h('p', { class: 'error-text', role: 'alert' });
  const username = h('input', { name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = async (e) => {
    e.preventDefault();
    error.textContent = '';
    try {
      const result = await api('POST', '/auth/login', { username: username.value, password: password.value }, { noExpire: true });
      state.user = result.user;
      setSession(result.expiresIn);
      updateHeader();
      await loadPreferences();
      toast(`Logged in as ${result.user.username}`);
      go(query.get('next') || '#/');
    } catch (err) {
      error.textContent = err.message;
    }
  };
  main.replaceChildren(h('div', { class: 'panel login' },
    h('h1', {}, 'Log in to S4'),
    h('form', { onsubmit: submit }, h('label', {}, 'Username', username), h('label', {}, 'Password', password),
      h('button', { type: 'submit' }, 'Log in'), error)));
  username.focus();
}

async function loadPreferences() {
  try { state.pageSize = (await api('GET', '/settings/max-files-per-page')).maxFilesPerPage || 100; } catch { /* default */ }
}

// ---------------------------------------------------------------- locations

async function loadLocations() {
  const [buckets, locals] = await Promise.all([api('GET', '/buckets'), api('GET', '/local/locations')]);
  return { buckets: buckets.buckets || [], defaultBucket: buckets.defaultBucket, locals: locals.locations || [] };
}

function locationSelect(all, current, attrs = {}) {
  const select = h('select', attrs,
    h('optgroup', { label: 'Buckets' }, all.buckets.map((b) => h('option', { value: `s3:${b.Name}` }, b.Name))),
    all.locals.length ? h('optgroup', { label: 'Local storage' }, all.locals.map((l) => h('option', { value: `local:${l.id}`, disabled: !l.available }, `${l.name} (${l.id})`))) : null);
  if (current) select.value = current;
  return select;
}

async function storagePage() {
  const all = await loadLocations();
  const name = h('input', { name: 'bucketName', placeholder: 'new-bucket-name', required: true, pattern: '[a-z0-9][a-z0-9.\\-]{1,61}[a-z0-9]', 'aria-label': 'New bucket name' });
  const create = async (e) => {
    e.preventDefault();
    const bucketName = name.value.trim();
    if (await act(() => api('POST', '/buckets', { bucketName }))) go(browseHref('s3', bucketName, ''));
  };
  const remove = async (bucket) => {
    const ok = await confirmDialog({ title: 'Delete bucket', message: `The bucket "${bucket}" must be empty. This cannot be undone.`, typed: bucket, confirmLabel: 'Delete bucket' });
    if (ok && (await act(() => api('DELETE', `/buckets/${encodeURIComponent(bucket)}`)))) render();
  };
  main.replaceChildren(
    h('h1', {}, 'Storage'),
    h('section', { class: 'panel', 'aria-labelledby': 'buckets-h' },
      h('div', { class: 'row' }, h('h2', { id: 'buckets-h' }, 'Buckets'), h('span', { class: 'spacer' }),
        h('form', { class: 'row', onsubmit: create }, name, h('button', { type: 'submit' }, 'Create bucket'))),
      all.buckets.length ? h('table', { id: 'buckets' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', { class: 'hide-narrow' }, 'Created'), h('th', { class: 'num' }, 'Actions'))),
        h('tbody', {}, all.buckets.map((b) => h('tr', { dataset: { bucket: b.Name } },
          h('td', {}, h('a', { class: 'name-link folder', href: browseHref('s3', b.Name, '') }, b.Name),
            b.Name === all.defaultBucket ? h('span', { class: 'badge ok' }, ' default') : null),
          h('td', { class: 'hide-narrow' }, fmtDate(b.CreationDate)),
          h('td', { class: 'actions' },
            h('a', { class: 'button ghost', href: `#/notifications/${encodeURIComponent(b.Name)}` }, 'Notifications'),
            h('button', { type: 'button', class: 'danger', 'aria-label': `Delete bucket ${b.Name}`, onclick: () => remove(b.Name) }, 'Delete'))))))
        : h('p', { class: 'muted' }, 'No buckets yet.')),
    h('section', { class: 'panel', 'aria-labelledby': 'locals-h' },
      h('h2', { id: 'locals-h' }, 'Local storage'),
      all.locals.length ? h('table', { id: 'locals' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', { class: 'hide-narrow' }, 'Path'), h('th', {}, 'Status'))),
        h('tbody', {}, all.locals.map((l) => h('tr', {},
          h('td', {}, l.available ? h('a', { class: 'name-link folder', href: browseHref('local', l.id, '') }, l.name) : l.name, h('span', { class: 'muted' }, ` ${l.id}`)),
          h('td', { class: 'hide-narrow' }, h('code', {}, l.path)),
          h('td', {}, h('span', { class: `badge ${l.available ? 'ok' : 'bad'}` }, l.available ? 'available' : 'unavailable'))))))
        : h('p', { class: 'muted' }, 'No local storage locations are configured (LOCAL_STORAGE_PATHS).')));
}

// ---------------------------------------------------------------- browser

function marked(name, ranges) {
  if (!ranges || !ranges.length) return name;
  const out = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start < at) continue;
    out.push(name.slice(at, start), h('mark', {}, name.slice(start, end)));
    at = end;
  }
  out.push(name.slice(at));
  return out;
}

async function listEntries(loc, query, page) {
  if (loc.type === 's3') {
    const prefix = loc.path ? loc.path + '/' : '';
    const params = new URLSearchParams({ maxKeys: String(state.pageSize) });
    const key = `${loc.id}\n${prefix}\n${query.get('q') || ''}\n${query.get('mode') || ''}`;
    const tokens = state.tokens.get(key) || [];
    if (page > 1 && tokens[page - 2]) params.set('continuationToken', tokens[page - 2]);
    else page = 1;
    if (query.get('q')) { params.set('q', query.get('q')); params.set('mode', query.get('mode') || 'startsWith'); }
    const path = `/objects/${encodeURIComponent(loc.id)}${prefix ? '/' + b64(prefix) : ''}?${params}`;
    const result = await api('GET', path);
    if (result.nextContinuationToken) { tokens[page - 1] = result.nextContinuationToken; state.tokens.set(key, tokens); }
    const matches = (result.filter && result.filter.matches) || { objects: {}, prefixes: {} };
    const folders = result.prefixes.map((p) => ({ kind: 'folder', name: leaf(p.Prefix), path: p.Prefix, match: matches.prefixes[p.Prefix] }));
    const files = result.objects.filter((o) => o.Key !== prefix && leaf(o.Key) !== '.s3keep' && !o.Key.endsWith('/'))
      .map((o) => ({ kind: 'file', name: leaf(o.Key), path: o.Key, size: o.Size, modified: o.LastModified, match: matches.objects[o.Key] }));
    return { entries: [...folders, ...files], page, hasNext: !!result.isTruncated, filter: result.filter };
  }
  const params = new URLSearchParams({ limit: String(state.pageSize), offset: String((page - 1) * state.pageSize) });
  const result = await api('GET', `/local/files/${encodeURIComponent(loc.id)}/${b64(loc.path)}?${params}`);
  let entries = result.files.map((f) => ({ kind: f.type === 'directory' ? 'folder' : 'file', name: f.name, path: f.path, size: f.size, modified: f.modified }));
  const q = (query.get('q') || '').toLowerCase();
  if (q) {
    const contains = (query.get('mode') || 'startsWith') === 'contains';
    entries = entries.filter((e) => (contains ? e.name.toLowerCase().includes(q) : e.name.toLowerCase().startsWith(q)))
      .map((e) => { const i = e.name.toLowerCase().indexOf(q); return { ...e, match: [[i, i + q.length]] }; });
  }
  return { entries, page, hasNext: page * state.pageSize < result.totalCount, total: result.totalCount };
}

async function deleteEntries(loc, entries) {
  let count = 0;
  for (const e of entries) {
    try {
      if (loc.type === 's3') {
        const key = e.kind === 'folder' ? e.path.replace(/\/?$/, '/') : e.path;
        await api('DELETE', `/objects/${encodeURIComponent(loc.id)}/${b64(key)}`);
      } else {
        await api('DELETE', `/local/${encodeURIComponent(loc.id)}/${b64(e.path)}`);
      }
      count += 1;
    } catch (err) {
      toast(`${e.name}: ${err.message}`, 'error');
    }
  }
  if (count) toast(count === 1 ? `Deleted ${entries[0].name}` : `Deleted ${count} items`);
  return count;
}

async function browserPage(parts, query) {
  const [type, id, ...segs] = parts;
  if (!id || (type !== 's3' && type !== 'local')) { go('#/'); return; }
  const loc = { type, id, path: segs.join('/') };
  const page = Math.max(1, Number(query.get('page')) || 1);
  const [all, listing] = await Promise.all([loadLocations(), listEntries(loc, query, page)]);
  const selected = new Set();
  const selectionBar = h('div', { class: 'row', id: 'selection', hidden: true });
  const select = locationSelect(all, `${type}:${id}`, { 'aria-label': 'Location', id: 'location', onchange: () => { const [t, ...rest] = select.value.split(':'); go(browseHref(t, rest.join(':'), '')); } });

  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumbs', id: 'crumbs' },
    h('a', { href: browseHref(type, id, '') }, id),
    segs.map((seg, i) => [h('span', { class: 'sep' }, '/'), i === segs.length - 1 ? h('span', { 'aria-current': 'page' }, seg) : h('a', { href: browseHref(type, id, segs.slice(0, i + 1).join('/')) }, seg)]));

  const refresh = () => render();
  // The upload list survives re-renders of the same folder (refresh after uploads).
  const uploadKey = `${type}:${id}:${loc.path}`;
  if (!state.uploads || state.uploads.key !== uploadKey) {
    state.uploads = { key: uploadKey, ...uploadPanel(loc, () => { if (main.contains(state.uploads.element)) render(); }) };
  }
  const uploads = state.uploads;

  const fileInput = h('input', { type: 'file', multiple: true, hidden: true, id: 'file-input', onchange: () => { uploads.add([...fileInput.files].map((f) => ({ file: f, rel: f.name }))); fileInput.value = ''; } });
  const folderInput = h('input', { type: 'file', multiple: true, hidden: true, webkitdirectory: true, id: 'folder-input', onchange: () => { uploads.add([...folderInput.files].map((f) => ({ file: f, rel: f.webkitRelativePath || f.name }))); folderInput.value = ''; } });

  const newFolder = async () => {
    const name = await promptDialog({ title: 'New folder', label: 'Folder name', confirmLabel: 'Create' });
    if (!name) return;
    const path = loc.path ? `${loc.path}/${name}` : name;
    const ok = await act(async () => {
      if (type === 's3') {
        const form = new FormData();
        form.append('file', new Blob([]), '.s3keep');
        const response = await fetch(`${API}/objects/upload/${encodeURIComponent(id)}/${b64(path + '/.s3keep')}`, { method: 'POST', body: form, credentials: 'same-origin' });
        if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      } else {
        await api('POST', `/local/create-directory/${encodeURIComponent(id)}/${b64(path)}`);
      }
      return true;
    }, `Folder "${name}" created`);
    if (ok) refresh();
  };

  const q = h('input', { type: 'search', name: 'q', value: query.get('q') || '', placeholder: 'Filter by name', 'aria-label': 'Filter by name', id: 'filter' });
  const mode = h('select', { 'aria-label': 'Search mode', id: 'filter-mode' },
    h('option', { value: 'startsWith' }, 'Starts with'), h('option', { value: 'contains' }, 'Contains'));
  mode.value = query.get('mode') || 'startsWith';
  const filterForm = h('form', { class: 'row', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    if (q.value.trim()) { params.set('q', q.value.trim()); params.set('mode', mode.value); }
    go(browseHref(type, id, loc.path, params.toString()));
  } }, q, mode, h('button', { type: 'submit' }, 'Filter'),
  query.get('q') ? h('a', { class: 'button ghost', href: browseHref(type, id, loc.path) }, 'Clear') : null);

  const rows = listing.entries.map((e) => {
    const box = h('input', { type: 'checkbox', 'aria-label': `Select ${e.name}`, onchange: () => { if (box.checked) selected.add(e); else selected.delete(e); updateSelection(); } });
    const href = e.kind === 'folder' ? browseHref(type, id, e.path) : viewHref(type, id, e.path);
    return h('tr', { dataset: { name: e.name, kind: e.kind } },
      h('td', {}, box),
      h('td', {}, h('a', { class: `name-link ${e.kind}`, href }, marked(e.name, e.match))),
      h('td', { class: 'num size' }, e.kind === 'file' ? h('span', { title: `${e.size} bytes` }, fmtSize(e.size)) : ''),
      h('td', { class: 'hide-narrow modified' }, fmtDate(e.modified)),
      h('td', { class: 'actions' },
        e.kind === 'file' ? h('a', { class: 'button ghost', href: downloadUrl(type, id, e.path), download: e.name, 'data-download': e.path }, 'Download') : null,
        h('button', { type: 'button', class: 'ghost', onclick: () => transferDialog(loc, [e]) }, 'Copy/Move'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${e.name}`, onclick: async () => {
          const ok = await confirmDialog({ title: e.kind === 'folder' ? 'Delete folder' : 'Delete file', message: e.kind === 'folder' ? `Delete the folder "${e.name}" and everything in it?` : `Delete "${e.name}"?` });
          if (ok && (await deleteEntries(loc, [e]))) refresh();
        } }, 'Delete')));
  });

  function updateSelection() {
    selectionBar.hidden = selected.size === 0;
    const items = [...selected];
    selectionBar.replaceChildren(h('strong', {}, `${selected.size} selected`),
      h('button', { type: 'button', onclick: async () => {
        for (const e of items.filter((x) => x.kind === 'file')) {
          const a = h('a', { href: downloadUrl(type, id, e.path), download: e.name });
          document.body.append(a); a.click(); a.remove();
          await new Promise((r) => setTimeout(r, 300));
        }
      } }, 'Download one by one'),
      h('button', { type: 'button', onclick: () => transferDialog(loc, items) }, 'Copy/Move…'),
      h('button', { type: 'button', class: 'danger', onclick: async () => {
        const ok = await confirmDialog({ title: 'Delete items', message: `Delete ${items.length} selected item(s)? Folders are deleted with their content.` });
        if (ok && (await deleteEntries(loc, items))) refresh();
      } }, 'Delete selected'));
  }
  const selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select all', onchange: () => {
    for (const box of table.querySelectorAll('tbody input[type=checkbox]')) { box.checked = selectAll.checked; box.dispatchEvent(new Event('change')); }
  } });
  const table = h('table', { id: 'listing' },
    h('thead', {}, h('tr', {}, h('th', {}, selectAll), h('th', {}, 'Name'), h('th', { class: 'num' }, 'Size'), h('th', { class: 'hide-narrow' }, 'Last modified'), h('th', { class: 'num' }, 'Actions'))),
    h('tbody', { onkeydown: (ev) => {
      if (ev.key !== 'ArrowDown' && ev.key !== 'ArrowUp') return;
      const links = [...table.querySelectorAll('tbody a.name-link')];
      const at = links.indexOf(document.activeElement);
      if (at < 0) return;
      ev.preventDefault();
      const next = links[Math.max(0, Math.min(links.length - 1, at + (ev.key === 'ArrowDown' ? 1 : -1)))];
      next.focus();
    } }, rows));

  const pageHref = (n) => { const p = new URLSearchParams(query); p.set('page', String(n)); return browseHref(type, id, loc.path, p.toString()); };
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('span', { class: 'muted' }, `Page ${listing.page} · ${state.pageSize} per page${listing.total !== undefined ? ` · ${listing.total} entries` : ''}`),
    listing.page > 1 ? h('a', { class: 'button ghost', href: pageHref(listing.page - 1) }, 'Previous') : null,
    listing.hasNext ? h('a', { class: 'button ghost', href: pageHref(listing.page + 1), id: 'next-page' }, 'Next') : null);

  const drop = h('div', { class: 'drop', id: 'dropzone' }, 'Drop files or folders here to upload them into this folder');
  const panel = h('section', { class: 'panel', id: 'browser' },
    h('div', { class: 'row' }, select, h('span', { class: 'spacer' }), filterForm),
    crumbs,
    h('div', { class: 'row' },
      h('button', { type: 'button', onclick: () => fileInput.click() }, 'Upload files'),
      h('button', { type: 'button', class: 'ghost', onclick: () => folderInput.click() }, 'Upload folder'),
      h('button', { type: 'button', class: 'ghost', onclick: newFolder }, 'New folder'),
      h('button', { type: 'button', class: 'ghost', onclick: refresh }, 'Refresh'),
      type === 's3' ? h('a', { class: 'button ghost', href: `#/notifications/${encodeURIComponent(id)}` }, 'Notifications') : null,
      fileInput, folderInput),
    listing.filter ? h('p', { class: 'muted', id: 'filter-info' }, `Filter "${listing.filter.q}" (${listing.filter.mode}${listing.filter.originalMode ? ', broadened' : ''})${listing.filter.partialResult ? ' — partial result, more on the next page' : ''}`) : null,
    selectionBar,
    listing.entries.length ? table : h('p', { class: 'muted', id: 'empty' }, query.get('q') ? 'Nothing matches the filter on this page.' : 'This folder is empty.'),
    pager, drop, uploads.element);
  for (const target of [panel]) {
    target.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    target.addEventListener('dragleave', () => drop.classList.remove('over'));
    target.addEventListener('drop', async (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      uploads.add(await droppedFiles(e.dataTransfer));
    });
  }
  main.replaceChildren(h('h1', {}, type === 's3' ? `Bucket ${id}` : `Local storage ${id}`), panel);
}

async function droppedFiles(transfer) {
  const out = [];
  const walk = async (entry, dir) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, rel: dir + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${dir}${entry.name}/`);
      }
    }
  };
  // Read everything synchronously: the DataTransfer is emptied once the event returns.
  const items = [...(transfer.items || [])].filter((item) => item.kind === 'file');
  const entries = items.map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  const direct = items.map((item) => item.getAsFile());
  const plain = items.length ? [] : [...transfer.files];
  for (let i = 0; i < items.length; i += 1) {
    if (entries[i]) await walk(entries[i], '');
    else if (direct[i]) out.push({ file: direct[i], rel: direct[i].name });
  }
  for (const f of plain) out.push({ file: f, rel: f.name });
  return out;
}

/** The upload list of the browser page: per-file progress, abort. */
function uploadPanel(loc, onDone) {
  const body = h('tbody');
  const element = h('section', { class: 'uploads', hidden: true, 'aria-label': 'Uploads' },
    h('h2', {}, 'Uploads'), h('table', { id: 'uploads' }, h('thead', {}, h('tr', {}, h('th', {}, 'File'), h('th', {}, 'Progress'), h('th', {}, 'Status'), h('th', {}))), body));
  const queue = [];
  let running = 0;
  let refreshTimer = null;
  const pump = () => {
    while (running < 2 && queue.length) {
      running += 1;
      queue.shift()().finally(() => { running -= 1; pump(); });
    }
    if (!running && !queue.length) { clearTimeout(refreshTimer); refreshTimer = setTimeout(onDone, 200); }
  };
  const add = (files) => {
    if (!files.length) return;
    element.hidden = false;
    for (const { file, rel } of files) {
      const path = loc.path ? `${loc.path}/${rel}` : rel;
      const bar = h('progress', { max: String(file.size || 1), value: '0' });
      const text = h('span', { class: 'muted' }, `0 / ${fmtSize(file.size)}`);
      const status = h('span', { class: 'status' }, 'queued');
      const controller = new AbortController();
      let finished = false;
      const abort = h('button', { type: 'button', class: 'ghost', onclick: async () => {
        if (finished) return;
        controller.abort();
        if (loc.type === 's3') await api('GET', `/objects/abort-upload/${b64(path)}`).catch(() => {});
        status.textContent = 'aborted';
      } }, 'Abort');
      body.append(h('tr', { dataset: { upload: path } }, h('td', {}, rel), h('td', {}, bar, text), h('td', {}, status), h('td', {}, abort)));
      const show = (loaded, total) => { bar.max = String(total || 1); bar.value = String(loaded); text.textContent = `${fmtSize(loaded)} / ${fmtSize(total)}`; };
      queue.push(async () => {
        if (controller.signal.aborted) return;
        status.textContent = 'uploading';
        const encoded = b64(path);
        let events = null;
        if (loc.type === 's3') {
          // Same-origin EventSource sends the session cookie; no ticket needed.
          events = new EventSource(`${API}/objects/upload-progress/${encoded}`);
          events.onmessage = (m) => {
            const ev = JSON.parse(m.data);
            if (!finished) show(ev.loaded, ev.total || file.size);
            if (ev.status !== 'uploading') events.close();
          };
          cleanups.push(() => events.close());
        }
        const form = new FormData();
        form.append('file', file, file.name);
        const url = loc.type === 's3' ? `${API}/objects/upload/${encodeURIComponent(loc.id)}/${encoded}` : `${API}/local/upload/${encodeURIComponent(loc.id)}/${encoded}`;
        try {
          const response = await fetch(url, { method: 'POST', body: form, credentials: 'same-origin', signal: controller.signal, headers: { 'X-File-Size': String(file.size) } });
          const data = await response.json().catch(() => null);
          if (!response.ok) throw new ApiError(response.status, data);
          finished = true;
          show(file.size, file.size);
          status.textContent = 'done';
          abort.hidden = true;
          toast(`Uploaded ${rel}`);
        } catch (e) {
          finished = true;
          abort.hidden = true;
          status.textContent = controller.signal.aborted ? 'aborted' : `failed: ${e.message}`;
          if (!controller.signal.aborted) toast(`${rel}: ${e.message}`, 'error');
          if (response401(e)) sessionExpired();
        } finally {
          if (events) setTimeout(() => events.close(), 1500);
        }
      });
    }
    pump();
  };
  return { element, add };
}

function response401(e) { return e instanceof ApiError && e.status === 401 && state.authRequired; }

// ---------------------------------------------------------------- preview & details

const KEYWORDS = new Set(('as async await break case catch class const continue def default del do elif else enum export extends false ' +
  'final finally fn for from func function go if impl import in interface let loop match mod mut new nil none null package pass pub ' +
  'raise return select self static struct super switch this throw trait true try type typeof use var void while with yield True False None').split(' '));

function langOf(name) {
  const ext = (name.includes('.') ? name.slice(name.lastIndexOf('.') + 1) : name).toLowerCase();
  if (['json', 'ipynb', 'jsonl'].includes(ext)) return 'json';
  if (['py', 'sh', 'bash', 'yaml', 'yml', 'toml', 'ini', 'cfg', 'conf', 'env', 'properties', 'r', 'rb', 'pl', 'makefile', 'dockerfile', 'containerfile', 'gitignore', 'dockerignore'].includes(ext)) return 'hash';
  if (['js', 'jsx', 'ts', 'tsx', 'rs', 'go', 'java', 'cs', 'c', 'h', 'cpp', 'php', 'css', 'scss', 'sql'].includes(ext)) return 'c';
  return 'plain';
}

/** A small highlighter: comments, strings, numbers, keywords; text nodes only. */
function highlight(text, lang) {
  const pre = h('pre', { class: 'code', id: 'preview-text', tabindex: '0' });
  const limit = 200000;
  const head = text.length > limit ? text.slice(0, limit) : text;
  if (lang === 'plain') { pre.textContent = text; return pre; }
  const comment = lang === 'hash' ? '#[^\\n]*' : lang === 'c' ? '\\/\\/[^\\n]*|\\/\\*[\\s\\S]*?\\*\\/|--[^\\n]*' : '(?!)';
  const re = new RegExp(`(${comment})|("(?:[^"\\\\\\n]|\\\\.)*"|'(?:[^'\\\\\\n]|\\\\.)*'|\`(?:[^\`\\\\]|\\\\.)*\`)|(-?\\b\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?\\b)|([A-Za-z_][A-Za-z0-9_]*)`, 'g');
  let at = 0;
  const frag = document.createDocumentFragment();
  for (let m = re.exec(head); m; m = re.exec(head)) {
    if (m.index > at) frag.append(head.slice(at, m.index));
    let cls = null;
    if (m[1]) cls = 'tok-c';
    else if (m[2]) cls = lang === 'json' && /^\s*:/.test(head.slice(re.lastIndex)) ? 'tok-p' : 'tok-s';
    else if (m[3]) cls = 'tok-n';
    else if (m[4] && KEYWORDS.has(m[4])) cls = 'tok-k';
    frag.append(cls ? h('span', { class: cls }, m[0]) : m[0]);
    at = re.lastIndex;
  }
  frag.append(head.slice(at) + text.slice(head.length));
  pre.append(frag);
  return pre;
}

function previewNode(name, preview, contentType) {
  if (!preview) return h('p', { class: 'muted' }, 'No preview.');
  if (!preview.available) {
    const reasons = { too_large: 'Too large to preview (images up to 1 MiB).', binary: 'Binary content: no preview.', unsupported_type: 'No preview for this file type.', directory: 'This is a folder.' };
    return h('p', { class: 'muted', id: 'preview-none' }, reasons[preview.reason] || `No preview (${preview.reason}).`);
  }
  if (preview.kind === 'image') return h('img', { class: 'preview', src: preview.content, alt: `Preview of ${name}`, id: 'preview-image' });
  let text = preview.content;
  let lang = langOf(name);
  if ((lang === 'json' || contentType === 'application/json') && !preview.truncated) {
    try { text = JSON.stringify(JSON.parse(text), null, 2); lang = 'json'; } catch { /* shown as stored */ }
  }
  return h('div', {}, preview.truncated ? h('p', { class: 'muted' }, 'Showing the first 1 MiB.') : null, highlight(text, lang));
}

function tagsEditor(bucket, key, tags) {
  const list = h('tbody');
  const rowFor = (t) => {
    const k = h('input', { value: t.Key, 'aria-label': 'Tag key', maxlength: '128' });
    const v = h('input', { value: t.Value, 'aria-label': 'Tag value', maxlength: '256' });
    const tr = h('tr', {}, h('td', {}, k), h('td', {}, v), h('td', {}, h('button', { type: 'button', class: 'ghost', onclick: () => tr.remove() }, 'Remove')));
    tr.read = () => ({ Key: k.value, Value: v.value });
    return tr;
  };
  tags.forEach((t) => list.append(rowFor(t)));
  const path = `/objects/tags/${encodeURIComponent(bucket)}/${b64(key)}`;
  return h('div', { id: 'tags' },
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', {}, 'Value'), h('th', {}))), list),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'ghost', onclick: () => list.append(rowFor({ Key: '', Value: '' })) }, 'Add tag'),
      h('button', { type: 'button', onclick: () => act(() => api('PUT', path, { tags: [...list.children].map((tr) => tr.read()).filter((t) => t.Key) })) }, 'Save tags'),
      h('button', { type: 'button', class: 'ghost', onclick: async () => { if (await act(() => api('DELETE', path))) list.replaceChildren(); } }, 'Delete all tags')));
}

async function viewPage(parts) {
  const [type, id, ...segs] = parts;
  const path = segs.join('/');
  const name = segs[segs.length - 1] || '';
  const folder = segs.slice(0, -1).join('/');
  const details = h('dl', { class: 'meta', id: 'details' });
  const add = (k, v) => { if (v !== undefined && v !== null && v !== '') details.append(h('dt', {}, k), h('dd', {}, v)); };
  let preview;
  let extra = null;
  if (type === 's3') {
    const [view, meta] = await Promise.all([
      api('GET', `/objects/view/${encodeURIComponent(id)}/${b64(path)}`),
      api('GET', `/objects/metadata/${encodeURIComponent(id)}/${b64(path)}`),
    ]);
    add('Key', meta.key); add('Size', `${fmtSize(meta.size)} (${meta.size} bytes)`); add('Type', meta.contentType);
    add('ETag', meta.etag); add('Last modified', fmtDate(meta.lastModified)); add('Storage class', meta.storageClass);
    const user = Object.entries(meta.metadata || {});
    add('Metadata', user.length ? user.map(([k, v]) => `${k}: ${v}`).join(', ') : 'none');
    preview = previewNode(name, view.preview, view.metadata.contentType);
    // Tags on demand: not every S3 engine implements them (Garage answers 501), and a
    // failed request would be noise on every details page.
    extra = h('div', { id: 'tags-box' }, h('button', { type: 'button', class: 'ghost', id: 'show-tags', onclick: async () => {
      try {
        const { tags } = await api('GET', `/objects/tags/${encodeURIComponent(id)}/${b64(path)}`);
        extra.replaceChildren(tagsEditor(id, path, tags));
      } catch (e) {
        extra.replaceChildren(h('p', { class: 'muted' }, `Tags are not available here: ${e.message}`));
      }
    } }, 'Show tags'));
  } else {
    const view = await api('GET', `/local/view/${encodeURIComponent(id)}/${b64(path)}`);
    const m = view.metadata;
    add('Path', m.path); add('Size', `${fmtSize(m.size)} (${m.size} bytes)`); add('Type', m.type); add('Modified', fmtDate(m.modified));
    if (m.target) add('Link target', m.target);
    preview = previewNode(name, view.preview, '');
  }
  const entry = { kind: 'file', name, path };
  const loc = { type, id, path: folder };
  main.replaceChildren(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumbs' },
      h('a', { href: browseHref(type, id, '') }, id),
      segs.slice(0, -1).map((seg, i) => [h('span', { class: 'sep' }, '/'), h('a', { href: browseHref(type, id, segs.slice(0, i + 1).join('/')) }, seg)]),
      h('span', { class: 'sep' }, '/'), h('span', { 'aria-current': 'page' }, name)),
    h('div', { class: 'row' }, h('h1', {}, name), h('span', { class: 'spacer' }),
      h('a', { class: 'button', href: downloadUrl(type, id, path), download: name, id: 'download' }, 'Download'),
      h('button', { type: 'button', class: 'ghost', onclick: () => transferDialog(loc, [entry]) }, 'Copy/Move'),
      h('button', { type: 'button', class: 'danger', onclick: async () => {
        if ((await confirmDialog({ title: 'Delete file', message: `Delete "${name}"?` })) && (await deleteEntries(loc, [entry]))) go(browseHref(type, id, folder));
      } }, 'Delete')),
    h('section', { class: 'panel' }, h('h2', {}, 'Details'), details, extra ? [h('h2', {}, 'Tags'), extra] : null),
    h('section', { class: 'panel', id: 'preview' }, h('h2', {}, 'Preview'), preview));
}

// ---------------------------------------------------------------- transfers

function recentJobs() {
  try { return JSON.parse(sessionStorage.getItem('s4.jobs') || '[]'); } catch { return []; }
}

function rememberJob(job) {
  const jobs = recentJobs().filter((j) => j.id !== job.id);
  jobs.unshift(job);
  sessionStorage.setItem('s4.jobs', JSON.stringify(jobs.slice(0, 50)));
}

async function folderPicker(all, target, pathInput) {
  const list = h('div', { class: 'row', id: 'picker' });
  const load = async () => {
    const [type, ...rest] = target.value.split(':');
    const id = rest.join(':');
    const path = pathInput.value.replace(/^\/+|\/+$/g, '');
    let folders = [];
    try {
      if (type === 's3') {
        const r = await api('GET', `/objects/${encodeURIComponent(id)}${path ? '/' + b64(path + '/') : ''}?maxKeys=200`);
        folders = r.prefixes.map((p) => p.Prefix.replace(/\/$/, ''));
      } else if (id) {
        const r = await api('GET', `/local/files/${encodeURIComponent(id)}/${b64(path)}?limit=200`);
        folders = r.files.filter((f) => f.type === 'directory').map((f) => f.path);
      }
    } catch (e) { list.replaceChildren(h('span', { class: 'muted' }, e.message)); return; }
    list.replaceChildren(
      h('span', { class: 'muted' }, 'Folders:'),
      path ? h('button', { type: 'button', class: 'ghost', onclick: () => { pathInput.value = path.split('/').slice(0, -1).join('/'); load(); } }, '↑ Up') : null,
      folders.length ? folders.map((f) => h('button', { type: 'button', class: 'ghost', onclick: () => { pathInput.value = f; load(); } }, leaf(f))) : h('span', { class: 'muted' }, 'none'));
  };
  // A typed folder may not exist yet (the transfer creates it): only the picker's
  // own buttons and the location list browse.
  target.addEventListener('change', () => { pathInput.value = ''; load(); });
  await load();
  return list;
}

async function transferDialog(source, entries) {
  let all;
  try { all = await loadLocations(); } catch (e) { fail(e); return; }
  const items = entries.map((e) => {
    const rel = source.path ? e.path.slice(source.path.length + 1) : e.path;
    return { path: rel.replace(/\/$/, ''), type: e.kind === 'folder' ? 'directory' : 'file' };
  });
  const target = locationSelect(all, all.locals.find((l) => l.available) ? `local:${all.locals.find((l) => l.available).id}` : `${source.type}:${source.id}`, { 'aria-label': 'Destination location', id: 'dest-location' });
  const pathInput = h('input', { id: 'dest-path', 'aria-label': 'Destination folder', placeholder: '(root)' });
  const conflict = h('select', { id: 'conflict', 'aria-label': 'If a file exists' },
    h('option', { value: 'skip' }, 'Skip existing files'), h('option', { value: 'overwrite' }, 'Overwrite existing files'), h('option', { value: 'rename' }, 'Keep both (rename)'));
  const operation = h('select', { id: 'operation', 'aria-label': 'Operation' }, h('option', { value: 'copy' }, 'Copy'), h('option', { value: 'move' }, 'Move'));
  const note = h('p', { class: 'muted', id: 'conflict-note' });
  const picker = await folderPicker(all, target, pathInput);
  let checked = false;
  const job = await openDialog((done) => {
    const start = h('button', { type: 'submit', class: 'primary', id: 'start-transfer' }, 'Start');
    const submit = async (e) => {
      e.preventDefault();
      const [type, ...rest] = target.value.split(':');
      const destination = { type, locationId: rest.join(':'), path: pathInput.value.trim() };
      const src = { type: source.type, locationId: source.id, path: source.path };
      try {
        if (!checked) {
          const check = await api('POST', '/transfer/check-conflicts', { source: src, destination, items });
          checked = true;
          const parts = [];
          if (check.conflicts.length) parts.push(`${check.conflicts.length} file(s) already exist at the destination (${conflict.options[conflict.selectedIndex].text.toLowerCase()}).`);
          if (check.warning) parts.push(check.warning.message);
          if (parts.length) { note.textContent = parts.join(' '); start.textContent = 'Start anyway'; return; }
        }
        const result = await api('POST', '/transfer', { source: src, destination, items, conflictResolution: conflict.value });
        done({ id: result.jobId, fileCount: result.fileCount, move: operation.value === 'move' ? { source, entries } : null,
          label: `${operation.value === 'move' ? 'Move' : 'Copy'} ${items.length} item(s) to ${destination.locationId}/${destination.path}` });
      } catch (err) { note.textContent = err.message; fail(err); }
    };
    return [h('form', { onsubmit: submit },
      h('h2', {}, `Copy or move ${items.length} item(s)`),
      h('p', { class: 'muted' }, items.map((i) => i.path).join(', ')),
      h('div', { class: 'grid' }, h('label', {}, 'Operation', operation), h('label', {}, 'Destination', target), h('label', {}, 'Folder', pathInput), picker, h('label', {}, 'If a file exists', conflict)),
      note,
      h('div', { class: 'buttons' }, h('button', { type: 'button', class: 'ghost', onclick: () => done(null) }, 'Cancel'), start))];
  });
  if (!job) return;
  rememberJob({ id: job.id, label: job.label, move: job.move ? { source: job.move.source, entries: job.move.entries } : null });
  toast(`Transfer started (${job.fileCount} file(s))`);
  go(`#/job/${encodeURIComponent(job.id)}`);
}

async function openSse(resourceType, resource, path, onEvent) {
  let url = API + path;
  if (state.authRequired) {
    // A one-time ticket scoped to this stream (the cookie would also do).
    try { url = API + (await api('POST', '/auth/sse-ticket', { resource, resourceType })).sseUrl; } catch { /* cookie */ }
  }
  const events = new EventSource(url);
  events.onmessage = (m) => { let data; try { data = JSON.parse(m.data); } catch { return; } onEvent(data, events); };
  cleanups.push(() => events.close());
  return events;
}

async function jobPage(parts) {
  const id = parts[0];
  const details = await api('GET', `/transfer/${encodeURIComponent(id)}`);
  const remembered = recentJobs().find((j) => j.id === id) || {};
  const status = h('strong', { id: 'job-status' }, details.status);
  const percent = h('span', { id: 'job-percent' }, `${details.progress.percentage} %`);
  const bar = h('progress', { max: '100', value: String(details.progress.percentage), 'aria-label': 'Job progress' });
  const counts = h('span', { class: 'muted', id: 'job-counts' });
  const files = h('tbody');
  const cancel = h('button', { type: 'button', class: 'danger', id: 'cancel-job', onclick: () => act(() => api('POST', `/transfer/cancel/${encodeURIComponent(id)}`), (r) => (r.cancelled ? 'Transfer cancelled' : 'Nothing to cancel: the job has finished')) }, 'Cancel');
  const cleanup = h('button', { type: 'button', class: 'ghost', id: 'cleanup-job', hidden: true, onclick: () => act(() => api('POST', `/transfer/cleanup/${encodeURIComponent(id)}`)) }, 'Clean up written files');
  let moved = false;
  const update = (snapshot) => {
    const p = snapshot.progress;
    status.textContent = snapshot.status;
    percent.textContent = `${p.percentage} %`;
    bar.value = String(p.percentage);
    counts.textContent = `${p.completedFiles} of ${p.totalFiles} files done, ${p.failedFiles} failed · ${fmtSize(p.loadedBytes)} of ${fmtSize(p.totalBytes)}`;
    files.replaceChildren(...snapshot.files.map((f) => h('tr', {},
      h('td', {}, f.file || f.destinationPath), h('td', { class: 'num' }, `${fmtSize(f.loaded)} / ${fmtSize(f.total ?? f.size)}`),
      h('td', {}, f.skipped ? 'skipped' : f.status, f.error ? h('span', { class: 'error-text' }, ` ${f.error}`) : null))));
    const terminal = ['completed', 'failed', 'cancelled'].includes(snapshot.status);
    cancel.hidden = terminal;
    cleanup.hidden = snapshot.status !== 'cancelled';
    if (terminal && remembered.move && snapshot.status === 'completed' && !moved) {
      moved = true;
      const { source, entries } = remembered.move;
      deleteEntries(source, entries).then(() => { rememberJob({ ...remembered, move: null }); toast('Move finished: the sources were deleted'); });
    }
  };
  update({ ...details, files: details.files });
  main.replaceChildren(
    h('h1', {}, details.type === 'huggingface' ? 'Import job' : 'Transfer job'),
    h('section', { class: 'panel', id: 'job' },
      h('p', {}, remembered.label || id),
      h('div', { class: 'row' }, 'Status: ', status, h('span', { class: 'spacer' }), percent),
      bar, counts, h('div', { class: 'row' }, cancel, cleanup),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'File'), h('th', { class: 'num' }, 'Bytes'), h('th', {}, 'State'))), files)));
  if (!['completed', 'failed', 'cancelled'].includes(details.status) || remembered.move) {
    await openSse('transfer', id, `/transfer/progress/${encodeURIComponent(id)}`, (event, es) => {
      if (event.type === 'error' && !event.progress) { es.close(); toast(event.error, 'error'); return; }
      update(event);
      if (['completed', 'failed', 'cancelled'].includes(event.status)) {
        es.close();
        toast(`Job ${event.status}: ${event.progress.completedFiles}/${event.progress.totalFiles} files`, event.status === 'completed' ? 'ok' : 'error');
      }
    });
  }
}

async function transfersPage() {
  const jobs = recentJobs();
  const rows = await Promise.all(jobs.map(async (j) => {
    let status = '';
    try { const d = await api('GET', `/transfer/${encodeURIComponent(j.id)}`); status = `${d.status} · ${d.progress.percentage} %`; } catch (e) { status = e.message; }
    return h('tr', {}, h('td', {}, h('a', { href: `#/job/${encodeURIComponent(j.id)}` }, j.label || j.id)), h('td', {}, status));
  }));
  main.replaceChildren(h('h1', {}, 'Transfers'), h('section', { class: 'panel' },
    rows.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'Status'))), h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'No transfers started in this browser session. Select files in a folder and choose Copy/Move.')));
}

// ---------------------------------------------------------------- HuggingFace import

async function importPage() {
  const all = await loadLocations();
  const field = (label, input) => h('label', {}, label, input);
  const modelId = h('input', { id: 'hf-model', required: true, placeholder: 'owner/name' });
  const revision = h('input', { id: 'hf-revision', value: 'main' });
  const include = h('input', { id: 'hf-include', placeholder: '*.json, *.safetensors' });
  const exclude = h('input', { id: 'hf-exclude', placeholder: '*.bin' });
  const token = h('input', { id: 'hf-token', type: 'password', placeholder: 'use the configured token', autocomplete: 'off' });
  const destination = locationSelect(all, all.buckets.length ? `s3:${all.buckets[0].Name}` : null, { id: 'hf-destination' });
  const prefix = h('input', { id: 'hf-prefix', placeholder: '(root)' });
  const list = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);
  const submit = async (e) => {
    e.preventDefault();
    const [type, ...rest] = destination.value.split(':');
    const body = { modelId: modelId.value.trim(), revision: revision.value.trim() || 'main', destinationType: type };
    if (type === 's3') { body.bucketName = rest.join(':'); body.prefix = prefix.value.trim(); } else { body.localLocationId = rest.join(':'); body.localPath = prefix.value.trim(); }
    if (list(include.value).length) body.include = list(include.value);
    if (list(exclude.value).length) body.exclude = list(exclude.value);
    if (token.value) body.hfToken = token.value;
    const result = await act(() => api('POST', '/objects/huggingface-import', body));
    if (result) {
      rememberJob({ id: result.jobId, label: `Import ${body.modelId}@${body.revision} to ${destination.value}/${prefix.value.trim()}` });
      go(`#/job/${encodeURIComponent(result.jobId)}`);
    }
  };
  main.replaceChildren(h('h1', {}, 'Import from HuggingFace'), h('section', { class: 'panel' },
    h('form', { class: 'grid', onsubmit: submit, id: 'import-form' },
      field('Model id', modelId), field('Revision', revision), field('Include (globs, comma-separated)', include), field('Exclude (globs)', exclude),
      field('Destination', destination), field('Prefix / folder', prefix), field('Token (optional)', token),
      h('div', {}, h('button', { type: 'submit' }, 'Start import')))));
}

// ---------------------------------------------------------------- notifications

async function notificationsPage(parts) {
  const bucket = parts[0];
  const path = `/notifications/${encodeURIComponent(bucket)}`;
  const { notifications } = await api('GET', path);
  const test = (endpoint) => act(() => api('POST', '/notifications/test-endpoint', { endpoint }), (r) => `${r.message}${r.warning ? ` (${r.warning})` : ''}`);
  const remove = async (n) => {
    if ((await confirmDialog({ title: 'Remove webhook', message: `Remove the webhook to ${n.endpoint}?`, confirmLabel: 'Remove' })) && (await act(() => api('DELETE', `${path}/${encodeURIComponent(n.id)}`)))) render();
  };
  const endpoint = h('input', { id: 'hook-endpoint', type: 'url', required: true, placeholder: 'https://example.com/hook' });
  const created = h('input', { type: 'checkbox', checked: true, id: 'hook-created' });
  const removed = h('input', { type: 'checkbox', checked: true, id: 'hook-removed' });
  const prefix = h('input', { id: 'hook-prefix' });
  const suffix = h('input', { id: 'hook-suffix' });
  const secret = h('input', { id: 'hook-secret', type: 'password', autocomplete: 'off' });
  const add = async (e) => {
    e.preventDefault();
    const events = [created.checked && 's3:ObjectCreated:*', removed.checked && 's3:ObjectRemoved:*'].filter(Boolean);
    if (!events.length) { toast('Choose at least one event', 'error'); return; }
    const entry = { endpoint: endpoint.value.trim(), events, prefix: prefix.value, suffix: suffix.value };
    if (secret.value) entry.secret = secret.value;
    if (await act(() => api('PUT', path, { notifications: [...notifications, entry] }))) render();
  };
  main.replaceChildren(
    h('nav', { class: 'crumbs' }, h('a', { href: '#/' }, 'Storage'), h('span', { class: 'sep' }, '/'), h('a', { href: browseHref('s3', bucket, '') }, bucket)),
    h('h1', {}, `Notifications of ${bucket}`),
    h('section', { class: 'panel' }, h('h2', {}, 'Webhooks'),
      notifications.length ? h('table', { id: 'hooks' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Endpoint'), h('th', {}, 'Events'), h('th', { class: 'hide-narrow' }, 'Filter'), h('th', { class: 'hide-narrow' }, 'Secret'), h('th', {}))),
        h('tbody', {}, notifications.map((n) => h('tr', {},
          h('td', {}, n.endpoint), h('td', {}, n.events.join(', ')),
          h('td', { class: 'hide-narrow' }, [n.prefix && `prefix ${n.prefix}`, n.suffix && `suffix ${n.suffix}`].filter(Boolean).join(', ')),
          h('td', { class: 'hide-narrow' }, n.secret || ''),
          h('td', { class: 'actions' }, h('button', { type: 'button', class: 'ghost', onclick: () => test(n.endpoint) }, 'Test'),
            h('button', { type: 'button', class: 'danger', onclick: () => remove(n) }, 'Remove'))))))
        : h('p', { class: 'muted' }, 'No webhooks for this bucket.')),
    h('section', { class: 'panel' }, h('h2', {}, 'Add a webhook'),
      h('form', { class: 'grid', onsubmit: add, id: 'hook-form' },
        h('label', {}, 'Endpoint URL', endpoint),
        h('fieldset', {}, h('legend', {}, 'Events'), h('label', { class: 'inline' }, created, 'Object created'), h('label', { class: 'inline' }, removed, 'Object removed')),
        h('label', {}, 'Key prefix', prefix), h('label', {}, 'Key suffix', suffix), h('label', {}, 'Signing secret (optional)', secret),
        h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Add webhook'),
          h('button', { type: 'button', class: 'ghost', id: 'hook-test', onclick: () => (endpoint.value ? test(endpoint.value.trim()) : toast('Enter an endpoint URL first', 'error')) }, 'Test endpoint')))));
}

// ---------------------------------------------------------------- settings

async function settingsPage() {
  const [s3, hf, proxy, conc, pages] = await Promise.all(['/settings/s3', '/settings/huggingface', '/settings/proxy', '/settings/max-concurrent-transfers', '/settings/max-files-per-page'].map((p) => api('GET', p)));
  const input = (id, value, attrs = {}) => h('input', { id, value: value ?? '', ...attrs });
  const field = (label, node, hint) => h('label', {}, label, node, hint ? h('small', { class: 'muted' }, hint) : null);
  const secretHint = (v) => (v === '***REDACTED***' ? 'A value is stored; it is shown as ***REDACTED***. Leave it to keep it.' : null);
  const section = (title, id, fields, buttons) => h('section', { class: 'panel', id }, h('h2', {}, title),
    h('form', { class: 'grid', onsubmit: (e) => e.preventDefault() }, fields, h('div', { class: 'row' }, buttons)));

  const s = s3.settings;
  const ak = input('s3-access-key', s.accessKeyId); const sk = input('s3-secret', s.secretAccessKey, { type: 'password', autocomplete: 'off' });
  const region = input('s3-region', s.region); const endpoint = input('s3-endpoint', s.endpoint); const bucket = input('s3-bucket', s.defaultBucket);
  const creds = () => ({ accessKeyId: ak.value, secretAccessKey: sk.value, region: region.value, endpoint: endpoint.value });
  const token = input('hf-token-setting', hf.settings.hfToken, { type: 'password', autocomplete: 'off' });
  const httpProxy = input('proxy-http', proxy.settings.httpProxy); const httpsProxy = input('proxy-https', proxy.settings.httpsProxy);
  const testUrl = input('proxy-test-url', 'https://huggingface.co');
  const maxConc = input('max-concurrent', conc.maxConcurrentTransfers, { type: 'number', min: '1', step: '1' });
  const pageSize = h('select', { id: 'page-size' }, [10, 25, 50, 100, 250, 500, 1000].map((n) => h('option', { value: String(n) }, String(n))));
  pageSize.value = String(pages.maxFilesPerPage);

  main.replaceChildren(h('h1', {}, 'Settings'),
    section('S3 connection', 'settings-s3', [field('Access key id', ak), field('Secret access key', sk, secretHint(s.secretAccessKey)), field('Region', region), field('Endpoint', endpoint), field('Default bucket', bucket)],
      [h('button', { type: 'button', id: 's3-save', onclick: () => act(() => api('PUT', '/settings/s3', { ...creds(), defaultBucket: bucket.value })) }, 'Save'),
        h('button', { type: 'button', class: 'ghost', id: 's3-test', onclick: () => act(() => api('POST', '/settings/test-s3', creds())) }, 'Test connection')]),
    section('HuggingFace', 'settings-hf', [field('Access token', token, secretHint(hf.settings.hfToken))],
      [h('button', { type: 'button', id: 'hf-save', onclick: () => act(() => api('PUT', '/settings/huggingface', { hfToken: token.value })) }, 'Save'),
        h('button', { type: 'button', class: 'ghost', id: 'hf-test', onclick: () => act(() => api('POST', '/settings/test-huggingface', { hfToken: token.value }), (r) => `${r.message}${r.accessTokenDisplayName ? ` (token "${r.accessTokenDisplayName}")` : ''}`) }, 'Test token')]),
    section('Proxy', 'settings-proxy', [field('HTTP proxy', httpProxy), field('HTTPS proxy', httpsProxy), field('Test URL', testUrl)],
      [h('button', { type: 'button', id: 'proxy-save', onclick: () => act(() => api('PUT', '/settings/proxy', { httpProxy: httpProxy.value, httpsProxy: httpsProxy.value })) }, 'Save'),
        h('button', { type: 'button', class: 'ghost', id: 'proxy-test', onclick: () => act(() => api('POST', '/settings/test-proxy', { httpProxy: httpProxy.value, httpsProxy: httpsProxy.value, testUrl: testUrl.value })) }, 'Test proxy')]),
    section('Transfers', 'settings-transfers', [field('Files copied at the same time', maxConc)],
      [h('button', { type: 'button', id: 'concurrency-save', onclick: () => act(() => api('PUT', '/settings/max-concurrent-transfers', { maxConcurrentTransfers: Number(maxConc.value) })) }, 'Save')]),
    section('Browser', 'settings-browser', [field('Entries per page', pageSize)],
      [h('button', { type: 'button', id: 'page-size-save', onclick: async () => {
        if (await act(() => api('PUT', '/settings/max-files-per-page', { maxFilesPerPage: Number(pageSize.value) }))) { state.pageSize = Number(pageSize.value); state.tokens.clear(); }
      } }, 'Save')]));
}

// ---------------------------------------------------------------- routing

function parseHash() {
  const raw = location.hash.slice(1) || '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const parts = path.split('/').filter(Boolean).map((s) => { try { return decodeURIComponent(s); } catch { return s; } });
  return { parts, query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

let renderSeq = 0;
async function render() {
  const seq = ++renderSeq;
  for (const fn of cleanups) fn();
  cleanups = [];
  if (dialog.open) dialog.close();
  const { parts, query } = parseHash();
  if (!state.user && parts[0] !== 'login') {
    go('#/login' + (location.hash && location.hash !== '#/' ? `?next=${encodeURIComponent(location.hash)}` : ''));
    return;
  }
  const section = { browse: 'storage', view: 'storage', notifications: 'storage', job: 'transfers' }[parts[0]] || parts[0] || 'storage';
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === section);
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const pages = { login: loginPage, browse: browserPage, view: viewPage, job: jobPage, transfers: transfersPage, import: importPage, notifications: notificationsPage, settings: settingsPage };
  const page = pages[parts[0]];
  document.title = `S4 · ${section[0].toUpperCase()}${section.slice(1)}`;
  try {
    if (parts[0] === 'login') await loginPage(query);
    else if (page) await page(parts.slice(1), query);
    else await storagePage();
  } catch (e) {
    if (seq !== renderSeq) return;
    main.replaceChildren(h('h1', {}, 'Something went wrong'), h('p', { class: 'error-text', id: 'page-error' }, e.message), h('p', {}, h('a', { href: '#/' }, 'Back to storage')));
    if (!response401(e)) fail(e);
  }
  if (seq === renderSeq) main.dataset.ready = location.hash;
}

async function start() {
  document.getElementById('logout').addEventListener('click', logout);
  document.addEventListener('keydown', (e) => {
    if (e.key === '/' && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) {
      const filter = document.getElementById('filter');
      if (filter) { e.preventDefault(); filter.focus(); }
    }
  });
  try {
    const info = await api('GET', '/auth/info');
    state.authRequired = !!info.authRequired;
    const until = Number(localStorage.getItem('s4.session') || 0);
    if (!state.authRequired || until > Date.now()) {
      try {
        state.user = (await api('GET', '/auth/me', undefined, { noExpire: true })).user;
        if (state.authRequired) setSession((until - Date.now()) / 1000);
      } catch { localStorage.removeItem('s4.session'); }
    }
    if (state.user) await loadPreferences();
  } catch (e) {
    fail(e);
  }
  updateHeader();
  window.addEventListener('hashchange', render);
  await render();
}

start();
