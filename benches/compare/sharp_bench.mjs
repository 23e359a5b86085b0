// In-process timing of one sharp pipeline, printing the same one-line JSON as
// `imgfn transform --repeat N`:
//   {"runs":N,"median_ms":..,"min_ms":..,"mean_ms":..,"bytes":..,"width":..,"height":..}
//
// usage: node sharp_bench.mjs --in FILE --w N [--h N] --fmt jpeg|webp|avif|png
//          [--q N] [--repeat N] [--warmup K] [--no-fast-shrink] -o OUT
//
// The input is read once into a Buffer; each timed iteration is
// `await sharp(buf).resize(...).<fmt>(...).toBuffer()` between two
// process.hrtime.bigint() reads. sharp's operation cache is off (every iteration
// does the real work) and libvips runs one thread (sharp.concurrency(1); run
// with VIPS_CONCURRENCY=1 UV_THREADPOOL_SIZE=1 and taskset for a single core).
// sharp is resolved from benches/compare/scratch/node_modules (see run.sh).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const scratch = process.env.SCRATCH || join(here, 'scratch');
const require = createRequire(join(scratch, 'package.json'));
const sharp = require('sharp');

function parseArgs(argv) {
  const a = { h: null, q: null, repeat: 5, warmup: 1, fast: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${k}`);
      return argv[++i];
    };
    switch (k) {
      case '--in': a.input = v(); break;
      case '--w': a.w = Number(v()); break;
      case '--h': a.h = Number(v()); break;
      case '--fmt': a.fmt = v(); break;
      case '--q': a.q = Number(v()); break;
      case '--repeat': a.repeat = Number(v()); break;
      case '--warmup': a.warmup = Number(v()); break;
      case '--no-fast-shrink': a.fast = false; break;
      case '-o': case '--output': a.output = v(); break;
      case '--versions':
        console.log(JSON.stringify({ sharp: sharp.versions.sharp, vips: sharp.versions.vips, node: process.versions.node }));
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (!a.input || !a.w || !a.fmt || !a.output) {
    throw new Error('need --in, --w, --fmt and -o');
  }
  if (!(a.repeat >= 1) || !(a.warmup >= 0)) throw new Error('bad --repeat/--warmup');
  return a;
}

const args = parseArgs(process.argv.slice(2));

sharp.cache(false);
sharp.concurrency(1);

const buf = readFileSync(args.input);

function job() {
  // Default resize (fit cover; with only a width it is a plain scale), default
  // kernel lanczos3, default fastShrinkOnLoad: true unless --no-fast-shrink.
  let p = sharp(buf).resize(args.w, args.h, args.fast ? {} : { fastShrinkOnLoad: false });
  const opts = args.q == null ? {} : { quality: args.q };
  switch (args.fmt) {
    case 'jpeg': case 'jpg': p = p.jpeg(opts); break;
    case 'webp': p = p.webp(opts); break;
    case 'avif': p = p.avif(opts); break; // default: quality 50, effort 4, 4:4:4
    case 'png': p = p.png(); break;
    default: throw new Error(`unsupported --fmt ${args.fmt}`);
  }
  return p.toBuffer({ resolveWithObject: true });
}

for (let i = 0; i < args.warmup; i++) await job();

const times = [];
let last;
for (let i = 0; i < args.repeat; i++) {
  const t0 = process.hrtime.bigint();
  last = await job();
  const t1 = process.hrtime.bigint();
  times.push(Number(t1 - t0) / 1e6);
}
writeFileSync(args.output, last.data);

const sorted = [...times].sort((x, y) => x - y);
const n = sorted.length;
const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
const r = (x) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({
  runs: n,
  median_ms: r(median),
  min_ms: r(sorted[0]),
  mean_ms: r(times.reduce((s, x) => s + x, 0) / n),
  bytes: last.data.length,
  width: last.info.width,
  height: last.info.height,
  times_ms: times.map(r),
}));
