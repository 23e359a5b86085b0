// imgfn upload client: the whole upload UI, built into <section id="upload">, shown only when
// the page has a token. Served after gallery.js in the same /_/gallery.js response; it uses
// gallery.js's getToken() and authHeaders(extra), and calls galleryRefresh(key) (if there is
// one) after each completed upload. Everything else stays inside this function, so the two
// files share no names.
//
// Small files go in one PUT to the URL POST /_/uploads answers. Larger ones (the server
// decides: the answer then has an `upload_id`) go in parts: each part's URL is asked just
// before that part is sent (POST /_/uploads/{id}/parts/{n}), a failed part is sent again
// after a pause, and POST /_/uploads/{id}/complete names every part's ETag. What an upload in
// parts needs to resume (its id, part size, the file's name, size and date) is kept in
// localStorage: choosing the same file again after an interruption asks the server which
// parts it holds (GET /_/uploads/{id}) and sends only the others.
(() => {
  'use strict';

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
  // (imgfn busy) are worth retrying: after Retry-After, else 1, 2, 4, 8 s.
  const RETRY_STATUSES = [429, 503];
  const RETRY_DELAYS_S = [1, 2, 4, 8];

  function retryDelay(res, attempt) {
    const after = Number(res.headers.get('retry-after'));
    const seconds = Number.isFinite(after) && after > 0 ? after : RETRY_DELAYS_S[attempt];
    return Math.min(seconds, 30);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // An error of the API or of a PUT; `status` is 0 when no answer came (network).
  function failure(message, status) {
    const err = new Error(message);
    err.status = status;
    return err;
  }

  // A call to imgfn's upload API; resolves to parsed JSON, rejects with the API's message
  // (and the HTTP status). `onWait(text)` is told when a busy answer is retried.
  async function api(path, { method = 'GET', body, onWait = () => {} } = {}) {
    const sent = authHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' });
    // Every POST/PUT/DELETE carries its payload hash, a bodiless one the hash of '' (OAC needs it).
    if (method !== 'GET' && method !== 'HEAD') {
      const hash = await payloadHash(body ?? '');
      if (hash) sent['x-amz-content-sha256'] = hash;
    }
    for (let attempt = 0; ; attempt += 1) {
      let res;
      try {
        res = await fetch(path, { method, headers: sent, body, cache: 'no-store' });
      } catch {
        throw failure('network error', 0);
      }
      if (RETRY_STATUSES.includes(res.status) && attempt < RETRY_DELAYS_S.length) {
        const wait = retryDelay(res, attempt);
        onWait(`The service is busy (HTTP ${res.status}); retrying in ${wait} s…`);
        await sleep(wait * 1000);
        continue;
      }
      let data = null;
      try { data = await res.json(); } catch { /* non-JSON body */ }
      if (!res.ok) {
        const message = data && data.error && data.error.message;
        if (message) throw failure(message, res.status);
        if (res.status === 403) {
          // AWS WAF's block (its rate rule) answers 403 with a page of its own.
          throw failure('Refused by the firewall in front of the service (HTTP 403): too many '
            + 'requests from this address? Wait a few minutes and reload.', 403);
        }
        throw failure(`HTTP ${res.status}`, res.status);
      }
      if (data === null) throw failure(`invalid response (HTTP ${res.status})`, res.status);
      return data;
    }
  }

  // PUT `body` to a presigned (or imgfn's own) URL with XHR, for its upload progress.
  // Resolves to the answer's ETag; `control.abort` is set to cancel it.
  function put(url, headers, body, onProgress, control) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('PUT', url);
      for (const [name, value] of Object.entries(headers || {})) {
        const lower = name.toLowerCase();
        if (lower === 'content-length' || lower === 'host') continue;
        try { xhr.setRequestHeader(name, value); } catch { /* forbidden header: browser decides */ }
      }
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded); };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.getResponseHeader('ETag') || '');
        else reject(failure(`upload failed: HTTP ${xhr.status}`, xhr.status));
      };
      xhr.onerror = () => reject(failure('upload failed: network error', 0));
      xhr.onabort = () => reject(failure('cancelled', -1));
      control.abort = () => xhr.abort();
      xhr.send(body);
    });
  }

  // A part that failed is sent again (with a fresh URL) after 1, 2, 4, 8, 16 s: a network
  // error, a timeout, a busy or failing store. A refusal (4xx) is final.
  const PART_RETRY_DELAYS_S = [1, 2, 4, 8, 16];
  const retriable = (err) => err.status === 0 || err.status === 408 || err.status === 429
    || err.status >= 500;

  async function withRetries(send, onWait) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await send();
      } catch (err) {
        if (!retriable(err) || attempt >= PART_RETRY_DELAYS_S.length) throw err;
        const wait = PART_RETRY_DELAYS_S[attempt];
        onWait(`${err.message}; trying again in ${wait} s…`);
        await sleep(wait * 1000);
      }
    }
  }

  // Browsers that cannot show JPEG XL or HEIC leave `file.type` empty for them: the type
  // is then taken from the name (the server checks it against what it decodes).
  const TYPES_BY_EXTENSION = {
    jxl: 'image/jxl', heic: 'image/heic', heif: 'image/heif', avif: 'image/avif',
    tif: 'image/tiff', tiff: 'image/tiff', bmp: 'image/bmp',
  };

  function fileType(file) {
    if (file.type) return file.type;
    const ext = file.name.includes('.') ? file.name.split('.').pop().toLowerCase() : '';
    return TYPES_BY_EXTENSION[ext] || '';
  }

  // What resumes an upload in parts, by the file's name, size and date.
  const STATE_PREFIX = 'imgfn-upload:';
  const stateKey = (file) => `${STATE_PREFIX}${file.name}:${file.size}:${file.lastModified}`;

  function loadState(file) {
    try {
      const state = JSON.parse(localStorage.getItem(stateKey(file)) || 'null');
      return state && state.id && state.size === file.size ? state : null;
    } catch { return null; }
  }

  function saveState(file, state) {
    try { localStorage.setItem(stateKey(file), JSON.stringify(state)); } catch { /* private mode */ }
  }

  function clearState(file) {
    try { localStorage.removeItem(stateKey(file)); } catch { /* private mode */ }
  }

  // Upload parts at once: enough to fill a connection, few enough that each part's URL is
  // asked just before it is used.
  const PARTS_AT_ONCE = 3;

  // Upload one file, reporting to `row` (its list item). Resolves to the new key.
  async function uploadFile(file, row) {
    row.status('signing', 'Starting…');
    const wait = (text) => row.status('waiting', text);
    let upload = null;
    const resumed = loadState(file);
    if (resumed) {
      try {
        const held = await api(`/_/uploads/${resumed.id}`, { onWait: wait });
        upload = { id: resumed.id, key: held.key, partSize: held.part_size,
          partCount: held.part_count, parts: held.parts };
        row.status('uploading', `Resuming: ${held.parts.length} of ${held.part_count} parts are there`);
      } catch (err) {
        // Completed, aborted, too old, or another token: start again.
        if (err.status === 0) throw err;
        clearState(file);
      }
    }
    if (!upload) {
      const ticket = await api('/_/uploads', {
        method: 'POST',
        body: JSON.stringify({ filename: file.name, content_type: fileType(file), bytes: file.size }),
        onWait: wait,
      });
      if (!ticket.upload_id) {
        row.status('uploading', 'Uploading…');
        await withRetries(() => put(ticket.upload_url, ticket.headers, file,
          (loaded) => row.progress(loaded), row.control), wait);
        row.progress(file.size);
        return ticket.key;
      }
      upload = { id: ticket.upload_id, key: ticket.key, partSize: ticket.part_size,
        partCount: ticket.part_count, parts: [] };
      saveState(file, { id: upload.id, key: upload.key, part_size: upload.partSize,
        name: file.name, size: file.size, last_modified: file.lastModified });
    }
    row.cancel = async () => {
      clearState(file);
      await api(`/_/uploads/${upload.id}`, { method: 'DELETE' });
    };

    // Parts the server holds at their full length are not sent again.
    const lengthOf = (n) => Math.min(upload.partSize, file.size - (n - 1) * upload.partSize);
    const etags = new Map();
    for (const p of upload.parts) {
      if (p.bytes === lengthOf(p.n)) etags.set(p.n, p.etag);
    }
    const todo = [];
    for (let n = 1; n <= upload.partCount; n += 1) if (!etags.has(n)) todo.push(n);
    const inFlight = new Map();
    const done = () => [...etags.keys()].reduce((sum, n) => sum + lengthOf(n), 0);
    const report = () => {
      row.progress(done() + [...inFlight.values()].reduce((a, b) => a + b, 0));
    };
    report();
    row.status('uploading', `Uploading in ${upload.partCount} parts…`);

    const sendPart = async (n) => {
      const start = (n - 1) * upload.partSize;
      const blob = file.slice(start, start + lengthOf(n));
      const etag = await withRetries(async () => {
        if (row.cancelled) throw failure('cancelled', -1);
        inFlight.set(n, 0);
        // The part's URL is asked just before the part is sent: it is valid for minutes only.
        const grant = await api(`/_/uploads/${upload.id}/parts/${n}`, { method: 'POST', onWait: wait });
        return put(grant.upload_url, grant.headers, blob, (loaded) => {
          inFlight.set(n, loaded);
          report();
        }, row.control);
      }, wait);
      inFlight.delete(n);
      if (!etag) throw failure('the store gave no ETag for a part (is ETag exposed by its CORS rule?)', 0);
      etags.set(n, etag);
      report();
      row.status('uploading', `Uploading: ${etags.size} of ${upload.partCount} parts`);
    };
    const workers = [];
    for (let i = 0; i < Math.min(PARTS_AT_ONCE, todo.length); i += 1) {
      workers.push((async () => {
        while (todo.length) await sendPart(todo.shift());
      })());
    }
    await Promise.all(workers);

    row.status('signing', 'Completing…');
    const parts = [...etags.entries()].sort((a, b) => a[0] - b[0]).map(([n, etag]) => ({ n, etag }));
    const completed = await api(`/_/uploads/${upload.id}/complete`, {
      method: 'POST', body: JSON.stringify({ parts }), onWait: wait,
    });
    clearState(file);
    return completed.key;
  }

  const STYLE = `
  #upload { margin-bottom: 1.5rem; }
  #upload .drop {
    display: flex; flex-wrap: wrap; align-items: center; gap: .5rem .9rem;
    padding: 1rem; background: var(--card, #fff); border: 2px dashed var(--border, #c9cdd3);
    border-radius: 10px;
  }
  #upload .drop.over { border-color: var(--accent, #2563eb); background: #eef4ff; }
  #upload .drop label { font-weight: 600; }
  #upload .hint { margin: 0; color: var(--muted, #596170); font-size: .88rem; }
  #upload-list { list-style: none; margin: .75rem 0 0; padding: 0; display: grid; gap: .4rem; }
  #upload-list li {
    display: flex; flex-wrap: wrap; align-items: center; gap: .35rem .75rem;
    padding: .45rem .7rem; background: var(--card, #fff); border: 1px solid var(--border, #e3e5e8);
    border-radius: 8px; font-size: .88rem;
  }
  #upload-list .name { font-weight: 550; overflow-wrap: anywhere; }
  #upload-list progress { width: 12rem; height: .6rem; }
  #upload-list .state { color: var(--muted, #596170); overflow-wrap: anywhere; }
  #upload-list li[data-state=done] .state { color: var(--ok, #067647); }
  #upload-list li[data-state=error] .state { color: var(--error, #b42318); }
  #upload-list button { padding: .2rem .6rem; font-size: .85rem; }
  `;

  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const ACCEPT = 'image/jpeg,image/png,image/webp,image/gif,image/avif,image/heic,image/heif,'
    + 'image/jxl,image/tiff,image/bmp,.jxl,.heic,.heif,.avif';

  // One list item per file: name, progress bar, state, and a button to cancel (or dismiss).
  function addRow(list, file) {
    const item = el('li', { 'data-state': 'queued', 'data-name': file.name });
    const name = el('span', { class: 'name' }, file.name);
    const bar = el('progress', { max: String(file.size || 1), value: '0', 'aria-label': `Upload of ${file.name}` });
    const state = el('span', { class: 'state', role: 'status' }, 'Waiting…');
    const button = el('button', { type: 'button', class: 'quiet', 'aria-label': `Cancel the upload of ${file.name}` }, 'Cancel');
    item.append(name, bar, state, button);
    list.prepend(item);
    const row = {
      control: { abort: () => {} },
      cancelled: false,
      cancel: async () => {},
      status(stateName, text) {
        item.dataset.state = stateName;
        state.textContent = text;
      },
      progress(loaded) {
        bar.value = Math.min(loaded, file.size);
        bar.dataset.loaded = String(loaded);
      },
      finish() {
        button.textContent = 'Dismiss';
        button.setAttribute('aria-label', `Dismiss ${file.name}`);
        button.onclick = () => item.remove();
      },
    };
    button.onclick = async () => {
      row.cancelled = true;
      row.control.abort();
      try { await row.cancel(); } catch { /* already gone */ }
      row.status('error', 'Cancelled');
      row.finish();
    };
    return row;
  }

  async function upload(list, files) {
    const rows = [...files].map((file) => [file, addRow(list, file)]);
    // One file at a time (each sends its parts a few at once), in the order chosen.
    for (const [file, row] of rows) {
      if (row.cancelled) continue;
      try {
        const key = await uploadFile(file, row);
        row.progress(file.size);
        row.status('done', `Uploaded ${key}`);
        if (typeof galleryRefresh === 'function') {
          try { await galleryRefresh(key); } catch { /* the grid shows it on the next load */ }
        }
      } catch (err) {
        if (!row.cancelled) row.status('error', err.message || 'upload failed');
      }
      row.finish();
    }
  }

  function build(section) {
    const style = el('style');
    style.textContent = STYLE;
    const drop = el('div', { class: 'drop' });
    const label = el('label', { for: 'upload-files' }, 'Upload images');
    const input = el('input', { type: 'file', id: 'upload-files', multiple: '', accept: ACCEPT });
    const hint = el('p', { class: 'hint', id: 'upload-hint' }, 'Choose one or more images, or drop them here. Large files go in parts and resume if interrupted: choose the same file again.');
    input.setAttribute('aria-describedby', 'upload-hint');
    drop.append(label, input, hint);
    const list = el('ul', { id: 'upload-list', 'aria-label': 'Uploads' });
    section.append(style, drop, list);

    input.addEventListener('change', () => {
      const files = [...input.files];
      input.value = '';
      if (files.length) upload(list, files);
    });
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      const files = e.dataTransfer ? [...e.dataTransfer.files] : [];
      if (files.length) upload(list, files);
    });
  }

  function init() {
    let section = document.getElementById('upload');
    if (!section) {
      section = el('section', { id: 'upload', 'aria-label': 'Upload images' });
      const grid = document.getElementById('grid');
      if (grid && grid.parentNode) grid.parentNode.insertBefore(section, grid);
      else document.body.append(section);
    }
    // Shown only while the page's token is the upload token: GET /_/uploads answers 200 for it
    // alone (a gallery viewer's token gets 401). Re-checked whenever the token changes.
    section.hidden = true;
    let checked;
    const sync = async () => {
      const token = getToken();
      if (token === checked) return;
      checked = token;
      let on = false;
      if (token) {
        try {
          const res = await fetch('/_/uploads', { headers: authHeaders({}), cache: 'no-store' });
          on = res.status === 200;
        } catch { /* network: stay hidden, retried on the next token change */ }
      }
      if (token !== checked) return;
      if (on && !section.firstChild) build(section);
      section.hidden = !on;
    };
    sync();
    document.addEventListener('imgfn:token', sync);
    setInterval(sync, 1000);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
