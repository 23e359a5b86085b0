// imgfn upload client: asks /_/uploads for a URL and PUTs the file straight to the store.
// Served after gallery.js in the same /_/gallery.js response; it uses gallery.js's token
// helpers getToken() and authHeaders(extra), and calls galleryRefresh(key) when an upload is
// complete. Everything else is kept inside this function so the two files share no names.
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

  // A call to imgfn's upload API; resolves to parsed JSON, rejects with the API's message.
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

  // PUT the file to the presigned URL with XHR so upload progress can be reported.
  function putFile(ticket, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(ticket.method || 'PUT', ticket.upload_url);
      for (const [name, value] of Object.entries(ticket.headers || {})) {
        const lower = name.toLowerCase();
        if (lower === 'content-length' || lower === 'host') continue;
        try { xhr.setRequestHeader(name, value); } catch { /* forbidden header: browser decides */ }
      }
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && e.total > 0) onProgress(e.loaded, e.total);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else reject(new Error(`upload failed: HTTP ${xhr.status}`));
      };
      xhr.onerror = () => reject(new Error('upload failed: network error'));
      xhr.onabort = () => reject(new Error('upload failed: aborted'));
      xhr.send(file);
    });
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

  function init() {
    const form = document.getElementById('upload-form');
    if (!form) return;
    const fileInput = document.getElementById('file');
    const button = document.getElementById('upload-button');
    const progress = document.getElementById('progress');
    const status = document.getElementById('status');
    const galleryStatus = document.getElementById('gallery-status');

    function setStatus(state, text) {
      status.dataset.state = state;
      status.textContent = text;
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const file = fileInput.files && fileInput.files[0];
      if (!file) {
        setStatus('error', 'choose a file first');
        return;
      }
      button.disabled = true;
      progress.value = 0;
      delete progress.dataset.loaded;
      delete progress.dataset.total;
      try {
        setStatus('signing', 'Requesting upload URL…');
        const ticket = await api('/_/uploads', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ filename: file.name, content_type: fileType(file), bytes: file.size }),
          onWait: (text) => setStatus('signing', text || 'Requesting upload URL…'),
        });

        setStatus('uploading', 'Uploading…');
        // Only progress events move the bar (the last one, once every byte is sent, reports
        // loaded === total); what they said is kept on the element for tests and debugging.
        await putFile(ticket, file, (loaded, total) => {
          progress.value = (loaded / total) * 100;
          progress.dataset.loaded = String(loaded);
          progress.dataset.total = String(total);
        });

        setStatus('done', `Uploaded ${ticket.key}`);
        if (typeof galleryRefresh === 'function') {
          try {
            await galleryRefresh(ticket.key);
          } catch (err) {
            if (galleryStatus) {
              galleryStatus.textContent = `Uploaded, but refreshing the gallery failed: ${err.message}`;
            }
          }
        }
      } catch (err) {
        setStatus('error', err.message || 'upload failed');
      } finally {
        button.disabled = false;
      }
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
