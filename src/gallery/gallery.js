// imgfn gallery: lists originals from /_/gallery.json (uploads: upload.js, served after this file).
'use strict';

const TOKEN_KEY = 'imgfn-token';

function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

function setToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage unavailable: token lives only in the input */ }
}

// Take `#token=...` from the URL fragment, remember it, and strip it from the address bar.
function consumeHashToken() {
  const hash = location.hash.replace(/^#/, '');
  if (!hash) return;
  const params = new URLSearchParams(hash);
  if (!params.has('token')) return;
  setToken(params.get('token') || '');
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
}

// The token travels in a header of imgfn's own: behind CloudFront's origin access control the
// distribution replaces `Authorization` with its signature of the request.
function authHeaders(extra = {}) {
  const headers = { ...extra };
  const token = getToken();
  if (token) headers['X-Imgfn-Authorization'] = `Bearer ${token}`;
  return headers;
}

// Hex SHA-256 of a request body: behind CloudFront's origin access control, Lambda accepts a
// POST only with its payload hash in `x-amz-content-sha256` (it takes no unsigned payloads).
// Web Crypto exists in secure contexts only (https, localhost); elsewhere the header is left out.
async function payloadHash(body) {
  if (!(globalThis.crypto && crypto.subtle)) return null;
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// 429 (Lambda throttled at its reserved concurrency, or a WAF rule set to answer 429) and 503
// (imgfn's render queue is full) are worth retrying: after Retry-After, else 1, 2, 4, 8 s.
const RETRY_STATUSES = [429, 503];
const RETRY_DELAYS_S = [1, 2, 4, 8];

function retryDelay(res, attempt) {
  const after = Number(res.headers.get('retry-after'));
  const seconds = Number.isFinite(after) && after > 0 ? after : RETRY_DELAYS_S[attempt];
  return Math.min(seconds, 30);
}

// fetch() against the imgfn API; resolves to parsed JSON, rejects with the API error message.
// `onWait(text)` is told when a busy answer is retried, and with '' once it has passed.
async function api(path, { method = 'GET', headers = {}, body, onWait = () => {} } = {}) {
  const sent = authHeaders(headers);
  if (body !== undefined) {
    const hash = await payloadHash(body);
    if (hash) sent['x-amz-content-sha256'] = hash;
  }
  for (let attempt = 0; ; attempt += 1) {
    let res;
    try {
      res = await fetch(path, { method, headers: sent, body, cache: 'no-store' });
    } catch {
      throw new Error('network error');
    }
    if (RETRY_STATUSES.includes(res.status) && attempt < RETRY_DELAYS_S.length) {
      const wait = retryDelay(res, attempt);
      onWait(`The service is busy (HTTP ${res.status}); retrying in ${wait} s…`);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      continue;
    }
    if (attempt > 0) onWait('');
    let data = null;
    try { data = await res.json(); } catch { /* non-JSON body */ }
    if (!res.ok) {
      const message = data && data.error && data.error.message;
      if (message) throw new Error(message);
      if (res.status === 403) {
        // AWS WAF's block (its rate rule) answers 403 with a page of its own.
        throw new Error('Refused by the firewall in front of the service (HTTP 403): too many '
          + 'requests from this address? Wait a few minutes and reload.');
      }
      if (RETRY_STATUSES.includes(res.status)) {
        throw new Error(`The service is still busy (HTTP ${res.status}); try again in a minute.`);
      }
      throw new Error(`HTTP ${res.status}`);
    }
    if (data === null) throw new Error(`invalid response (HTTP ${res.status})`);
    return data;
  }
}

function listUrl({ prefix, cursor, limit } = {}) {
  const parts = [];
  if (prefix) parts.push(`prefix=${encodeURIComponent(prefix)}`);
  if (cursor) parts.push(`cursor=${encodeURIComponent(cursor)}`);
  if (limit) parts.push(`limit=${encodeURIComponent(limit)}`);
  return '/_/gallery.json' + (parts.length ? `?${parts.join('&')}` : '');
}

function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do { v /= 1024; i += 1; } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(1)} ${units[i]}`;
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined && v !== '') node.setAttribute(k, String(v));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderItem(item) {
  const failed = Boolean(item.error) || !item.thumbnail;
  const figure = el('figure', { class: failed ? 'item error' : 'item', 'data-key': item.key });

  if (failed) {
    const msg = (item.error && item.error.message) || 'no thumbnail available';
    figure.append(el('div', { class: 'broken' }, msg));
  } else {
    const t = item.thumbnail;
    const link = el('a', { href: item.url });
    link.append(el('img', {
      src: t.src,
      srcset: t.srcset,
      width: t.width,
      height: t.height,
      loading: 'lazy',
      decoding: 'async',
      alt: item.key,
    }));
    figure.append(link);
  }

  const hasDims = item.width != null && item.height != null;
  const meta = [item.format, formatBytes(item.bytes)].filter(Boolean).join(' · ');
  const caption = el('figcaption');
  caption.append(
    el('span', { class: 'name' }, item.key),
    ' ',
    el('span', { class: 'dims' }, hasDims ? `${item.width} × ${item.height}` : ''),
    ' ',
    el('span', { class: 'meta' }, meta),
  );
  figure.append(caption);
  return figure;
}

function findFigure(grid, key) {
  for (const fig of grid.querySelectorAll('figure.item')) {
    if (fig.dataset.key === key) return fig;
  }
  return null;
}

function init() {
  consumeHashToken();

  const grid = document.getElementById('grid');
  const more = document.getElementById('more');
  const galleryStatus = document.getElementById('gallery-status');
  const tokenInput = document.getElementById('token');

  let nextCursor = null;
  let loading = false;

  tokenInput.value = getToken();
  const storeToken = () => setToken(tokenInput.value.trim());
  tokenInput.addEventListener('change', storeToken);
  tokenInput.addEventListener('input', storeToken);

  async function loadPage(cursor) {
    if (loading) return;
    loading = true;
    more.disabled = true;
    try {
      const page = await api(listUrl({ cursor }), {
        onWait: (text) => { galleryStatus.textContent = text; },
      });
      galleryStatus.textContent = '';
      for (const item of page.items || []) {
        if (!findFigure(grid, item.key)) grid.append(renderItem(item));
      }
      nextCursor = page.next_cursor ?? null;
    } catch (err) {
      galleryStatus.textContent = err.message;
    } finally {
      loading = false;
      more.disabled = false;
      more.hidden = nextCursor === null;
    }
  }

  // Called by the upload client (upload.js) once an upload is complete; with the new key, the
  // listing of that key alone is put at the top of the grid.
  globalThis.galleryRefresh = async (key) => {
    const page = await api(listUrl(key ? { prefix: key } : {}));
    const items = (page.items || []).filter((item) => !findFigure(grid, item.key));
    // Insert in reverse so the listing order is preserved at the top of the grid.
    for (const item of items.reverse()) grid.prepend(renderItem(item));
  };

  more.addEventListener('click', () => {
    if (nextCursor !== null) loadPage(nextCursor);
  });

  loadPage(null);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}
