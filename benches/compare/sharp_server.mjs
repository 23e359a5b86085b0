// A minimal image server on sharp, the peer of `imgfn serve` in the cold-gallery run
// (gallery_load.py): GET /<file>?w=N&fmt=jpeg|webp reads <root>/<file> and answers with
// sharp(buffer).resize(N).<fmt>({quality: 80}). sharp runs with its defaults (libvips threads
// = cores, libuv pool of 4), as a Node deployment of it would; its operation cache is off so
// every request does the work, as imgfn's empty cache and thumbor's absent result storage do.
//
// usage: node sharp_server.mjs --root DIR --port N
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const scratch = process.env.SCRATCH || join(here, 'scratch');
const require = createRequire(join(scratch, 'package.json'));
const sharp = require('sharp');
sharp.cache(false);

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  if (i < 0 || i + 1 >= args.length) throw new Error(`missing ${name}`);
  return args[i + 1];
};
const root = arg('--root');
const port = Number(arg('--port'));

createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://localhost');
    const file = normalize(decodeURIComponent(url.pathname)).replace(/^([/\\])+/, '');
    if (file.startsWith('..')) throw Object.assign(new Error('bad path'), { status: 400 });
    const w = Number(url.searchParams.get('w'));
    const fmt = url.searchParams.get('fmt') || 'jpeg';
    const input = await readFile(join(root, file));
    let p = sharp(input).rotate().resize(w || null);
    p = fmt === 'webp' ? p.webp({ quality: 80 }) : p.jpeg({ quality: 80 });
    const out = await p.toBuffer();
    res.writeHead(200, { 'content-type': `image/${fmt}`, 'content-length': out.length });
    res.end(out);
  } catch (e) {
    res.writeHead(e.status || 500, { 'content-type': 'text/plain' });
    res.end(String(e.message || e));
  }
}).listen(port, '127.0.0.1');
