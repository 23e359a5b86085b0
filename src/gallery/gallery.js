// imgfn gallery: the grid of /_/gallery.json (placeholders until each thumbnail arrives, more
// pages as the reader scrolls), the viewer, and the sign-in of a private gallery. The upload
// client is upload.js, served after this file: it uses getToken() and authHeaders(extra) and
// calls galleryRefresh(key) once an upload is complete.
'use strict';

const TOKEN_KEY = 'imgfn-token';

function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

function setToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage unavailable: the token lasts as long as the page */ }
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

// 429 (Lambda throttled at its reserved concurrency, or a WAF rule set to answer 429) and 503
// (imgfn's render queue is full) are worth retrying: after Retry-After, else 1, 2, 4, 8 s.
const RETRY_STATUSES = [429, 503];
const RETRY_DELAYS_S = [1, 2, 4, 8];

function retryDelay(res, attempt) {
  const after = Number(res.headers.get('retry-after'));
  const seconds = Number.isFinite(after) && after > 0 ? after : RETRY_DELAYS_S[attempt];
  return Math.min(seconds, 30);
}

// A GET of the listing; resolves to parsed JSON, rejects with the API's message and the
// HTTP status (`err.status`: 401 asks for a token). `onWait(text)` is told when a busy answer
// is retried, and with '' once it has passed.
async function getJson(path, onWait = () => {}) {
  for (let attempt = 0; ; attempt += 1) {
    let res;
    try {
      res = await fetch(path, { headers: authHeaders(), cache: 'no-store' });
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
      let message = (data && data.error && data.error.message) || `HTTP ${res.status}`;
      if (res.status === 403 && !(data && data.error)) {
        // AWS WAF's block (its rate rule) answers 403 with a page of its own.
        message = 'Refused by the firewall in front of the service (HTTP 403): too many '
          + 'requests from this address? Wait a few minutes and reload.';
      }
      const err = new Error(message);
      err.status = res.status;
      throw err;
    }
    if (data === null) throw new Error(`invalid response (HTTP ${res.status})`);
    return data;
  }
}

// The page's own `?limit=` (a page size for small screens and tests) goes to the listing.
function pageLimit() {
  const limit = new URLSearchParams(location.search).get('limit');
  return limit && /^\d+$/.test(limit) ? limit : null;
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

// Show `url` (the placeholder's data: URL) behind `img` until the image itself has loaded,
// sized as the image will be drawn in its box (`object-fit: contain` in a box of `boxAspect`).
function showPlaceholder(img, url, width, height, boxAspect) {
  if (!url) return;
  img.dataset.placeholder = url;
  img.style.backgroundImage = `url("${url}")`;
  const aspect = width / height;
  img.style.backgroundSize = aspect >= boxAspect
    ? `100% ${(boxAspect / aspect) * 100}%`
    : `${(aspect / boxAspect) * 100}% 100%`;
  const clear = () => {
    // Transparent images would show it through: gone once the pixels are there.
    img.style.backgroundImage = '';
    img.dataset.loaded = '1';
  };
  if (img.complete && img.naturalWidth > 0) clear();
  else img.addEventListener('load', clear, { once: true });
}

const THUMB_BOX_ASPECT = 4 / 3;

function renderItem(item, onOpen) {
  const failed = Boolean(item.error) || !item.thumbnail;
  const figure = el('figure', { class: failed ? 'item error' : 'item', 'data-key': item.key });

  if (failed) {
    const msg = (item.error && item.error.message) || 'no thumbnail available';
    figure.append(el('div', { class: 'broken' }, msg));
  } else {
    const t = item.thumbnail;
    const link = el('a', { href: item.url });
    const img = el('img', {
      src: t.src,
      srcset: t.srcset,
      width: t.width,
      height: t.height,
      loading: 'lazy',
      decoding: 'async',
      alt: item.key,
    });
    showPlaceholder(img, item.placeholder, t.width, t.height, THUMB_BOX_ASPECT);
    link.append(img);
    // A click (or Enter, which clicks a link) opens the viewer; a modified click still opens
    // the original in a new tab.
    link.addEventListener('click', (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      onOpen(item.key, link);
    });
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

// The viewer: one <dialog>, the image at the viewport's size, ←/→ through the grid, Esc to
// close (focus goes back to the thumbnail it was opened from).
function makeViewer({ items, grid, loadMore }) {
  const dialog = document.getElementById('viewer');
  const img = document.getElementById('viewer-img');
  const title = document.getElementById('viewer-title');
  const dims = document.getElementById('viewer-dims');
  const format = document.getElementById('viewer-format');
  const bytes = document.getElementById('viewer-bytes');
  const download = document.getElementById('viewer-download');
  const prev = document.getElementById('viewer-prev');
  const next = document.getElementById('viewer-next');
  const close = document.getElementById('viewer-close');
  let current = null;

  // The keys the viewer can show, in the grid's order.
  const keys = () => [...grid.querySelectorAll('figure.item:not(.error)')].map((f) => f.dataset.key);

  function show(key) {
    const item = items.get(key);
    if (!item || !item.viewer) return;
    current = key;
    const v = item.viewer;
    const aspect = item.width / item.height;
    // What the CSS draws (#viewer-img's width), said again for the browser's candidate choice.
    const sizes = `min(calc(100vw - 4rem), calc((100vh - 9rem) * ${aspect.toFixed(4)}), ${item.width}px)`;
    img.style.setProperty('--aspect', String(aspect));
    img.style.setProperty('--max-width', `${item.width}px`);
    img.removeAttribute('src');
    img.removeAttribute('srcset');
    img.style.backgroundImage = '';
    delete img.dataset.loaded;
    delete img.dataset.placeholder;
    img.setAttribute('width', v.width);
    img.setAttribute('height', v.height);
    img.setAttribute('alt', item.key);
    img.setAttribute('sizes', sizes);
    img.setAttribute('srcset', v.srcset);
    img.setAttribute('src', v.src);
    img.dataset.key = key;
    showPlaceholder(img, item.placeholder, v.width, v.height, aspect);
    title.textContent = item.key;
    dims.textContent = `${item.width} × ${item.height}`;
    format.textContent = item.format ? item.format.toUpperCase() : '';
    bytes.textContent = `${formatBytes(item.bytes)} (${item.bytes.toLocaleString('en')} bytes)`;
    download.setAttribute('href', item.download);
    download.setAttribute('download', item.key.split('/').pop());
    const all = keys();
    const at = all.indexOf(key);
    const atStart = at <= 0;
    const atEnd = at === all.length - 1 && !loadMore.available();
    // A disabled button drops its focus to <body>, out of the dialog: hand it to the other
    // arrow (or to Close when both end), so the keyboard stays in the viewer.
    const focused = document.activeElement;
    if ((focused === prev && atStart) || (focused === next && atEnd)) {
      (atStart && atEnd ? close : focused === prev ? next : prev).focus();
    }
    prev.disabled = atStart;
    next.disabled = atEnd;
  }

  async function step(delta) {
    if (current === null) return;
    let all = keys();
    let at = all.indexOf(current);
    if (delta > 0 && at === all.length - 1 && loadMore.available()) {
      await loadMore.load();
      all = keys();
      at = all.indexOf(current);
    }
    const to = all[at + delta];
    if (to !== undefined) show(to);
  }

  let opener = null;
  function open(key, from) {
    opener = from;
    show(key);
    if (!dialog.open) dialog.showModal();
    close.focus();
  }

  prev.addEventListener('click', () => step(-1));
  next.addEventListener('click', () => step(1));
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowLeft') { event.preventDefault(); step(-1); }
    if (event.key === 'ArrowRight') { event.preventDefault(); step(1); }
  });
  // Esc closes a modal <dialog> by itself; every way of closing returns focus to the
  // thumbnail of the image last shown.
  dialog.addEventListener('close', () => {
    const fig = current === null ? null : findFigure(grid, current);
    const link = (fig && fig.querySelector('a')) || opener;
    current = null;
    img.removeAttribute('src');
    img.removeAttribute('srcset');
    if (link) link.focus();
  });
  return { open };
}

function init() {
  consumeHashToken();

  const grid = document.getElementById('grid');
  const more = document.getElementById('more');
  const sentinel = document.getElementById('sentinel');
  const galleryStatus = document.getElementById('gallery-status');
  const signin = document.getElementById('signin');
  const signinOpen = document.getElementById('signin-open');
  const signout = document.getElementById('signout');
  const tokenInput = document.getElementById('token');
  const signinStatus = document.getElementById('signin-status');
  const limit = pageLimit();

  const items = new Map();
  let nextCursor = null;
  let loading = null;

  signout.hidden = !getToken();
  signinOpen.hidden = Boolean(getToken());

  function askForToken(message) {
    signin.hidden = false;
    signinOpen.hidden = true;
    signinStatus.textContent = message;
    tokenInput.focus();
  }

  signinOpen.addEventListener('click', () => askForToken(''));
  signin.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = tokenInput.value.trim();
    if (!token) return;
    setToken(token);
    // A fresh start with the token: the listing and the upload form both read it.
    location.reload();
  });
  signout.addEventListener('click', () => {
    setToken('');
    location.reload();
  });

  function add(item, where) {
    items.set(item.key, item);
    const figure = renderItem(item, (key, link) => viewer.open(key, link));
    if (where === 'top') grid.prepend(figure);
    else grid.append(figure);
  }

  // One page after `cursor`; a second call while one is on its way shares it.
  function loadPage(cursor) {
    if (loading) return loading;
    more.disabled = true;
    loading = (async () => {
      try {
        const page = await getJson(listUrl({ cursor, limit }), (text) => {
          galleryStatus.textContent = text;
        });
        galleryStatus.textContent = '';
        for (const item of page.items || []) {
          if (!findFigure(grid, item.key)) add(item, 'bottom');
        }
        nextCursor = page.next_cursor ?? null;
      } catch (err) {
        if (err.status === 401) {
          const had = getToken();
          askForToken(had
            ? `The token was refused (${err.message}).`
            : 'This gallery is private: enter your access token to see it.');
        } else {
          galleryStatus.textContent = err.message;
        }
      } finally {
        loading = null;
        more.disabled = false;
        more.hidden = nextCursor === null;
      }
    })();
    return loading.then(() => {
      // Still near the end (a short page, a tall screen): observing again reports it again.
      if (nextCursor !== null && observer) {
        observer.unobserve(sentinel);
        observer.observe(sentinel);
      }
    });
  }

  const loadMore = {
    available: () => nextCursor !== null,
    load: () => (nextCursor !== null ? loadPage(nextCursor) : Promise.resolve()),
  };
  const viewer = makeViewer({ items, grid, loadMore });

  // More pages as the end of the grid comes near.
  const observer = 'IntersectionObserver' in globalThis
    ? new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && nextCursor !== null && !loading) {
        loadPage(nextCursor);
      }
    }, { rootMargin: '200px 0px' })
    : null;

  more.addEventListener('click', () => loadMore.load());

  // Called by the upload client (upload.js) once an upload is complete: the listing of that
  // key (or, without one, the first page) is read again and what the grid lacks goes on top.
  globalThis.galleryRefresh = async (key) => {
    const page = await getJson(listUrl(key ? { prefix: key } : { limit }));
    const fresh = (page.items || []).filter((item) => !findFigure(grid, item.key));
    // In reverse, so the listing's order is kept at the top of the grid.
    for (const item of fresh.reverse()) add(item, 'top');
  };

  loadPage(null).then(() => {
    if (observer) observer.observe(sentinel);
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}
