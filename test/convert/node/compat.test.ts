// The Node layer against Node itself: each script runs under this machine's node (in a scratch copy of the app)
// and as a Box; both must print the same and exit the same. The scripts print paths relative to their directory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadBox } from '../../../src/box/layout.js';
import { planRun, runPlanIsolated } from '../../../src/box/runner.js';
import { convertImage, writeBoxToOciLayout } from '../../../src/convert/pipeline.js';
import type { RuntimeCatalog } from '../../../src/convert/runtimes.js';
import { OciLayoutSource } from '../../../src/image/oci-layout.js';
import { dir, elf, file, tempDir, writeLayout, type Entry } from '../helpers.js';
import { assertBoxRunsAlikeInEngines } from '../../helpers/engines/index.js';
import { quickjsCatalog } from './helpers.js';

let root: string;
let cleanup: () => Promise<void>;
let runtimes: RuntimeCatalog;
let n = 0;
before(async () => {
  ({ path: root, cleanup } = await tempDir('boxproxy-node-compat-'));
  runtimes = await quickjsCatalog();
});
after(async () => cleanup());

const SCRIPTS: Record<string, string> = {
  'fs.js': `const fs = require('fs'); const path = require('path');
const d = path.join(__dirname, 'work');
fs.rmSync(d, { recursive: true, force: true });
fs.mkdirSync(path.join(d, 'a', 'b'), { recursive: true });
fs.writeFileSync(path.join(d, 'a', 'one.txt'), 'one\\n');
fs.appendFileSync(path.join(d, 'a', 'one.txt'), 'two\\n');
fs.writeFileSync(path.join(d, 'bin.dat'), Buffer.from([0, 1, 2, 255]));
console.log(fs.readFileSync(path.join(d, 'a', 'one.txt'), 'utf8').split('\\n'));
console.log([...fs.readFileSync(path.join(d, 'bin.dat'))], fs.statSync(path.join(d, 'bin.dat')).size);
console.log(fs.readdirSync(d).sort(), fs.readdirSync(d, { withFileTypes: true }).map((e) => [e.name, e.isDirectory(), e.isFile()]).sort());
console.log(fs.statSync(path.join(d, 'a')).isDirectory(), fs.existsSync(path.join(d, 'nope')), fs.statSync(path.join(d, 'nope'), { throwIfNoEntry: false }));
fs.renameSync(path.join(d, 'a', 'one.txt'), path.join(d, 'a', 'b', 'moved.txt'));
fs.copyFileSync(path.join(d, 'a', 'b', 'moved.txt'), path.join(d, 'copy.txt'));
fs.symlinkSync('copy.txt', path.join(d, 'link'));
console.log(fs.readlinkSync(path.join(d, 'link')), fs.lstatSync(path.join(d, 'link')).isSymbolicLink(), fs.readFileSync(path.join(d, 'link'), 'utf8').length);
console.log(path.relative(__dirname, fs.realpathSync(path.join(d, 'link'))));
for (const bad of [() => fs.readFileSync(path.join(d, 'nope')), () => fs.mkdirSync(path.join(d, 'a')), () => fs.rmdirSync(path.join(d, 'a')), () => fs.readdirSync(path.join(d, 'copy.txt'))]) {
  try { bad(); } catch (e) { console.log(e.code, e.syscall, e.errno, e.message.replace(__dirname, '.')); }
}
fs.unlinkSync(path.join(d, 'link'));
const fd = fs.openSync(path.join(d, 'fd.txt'), 'w'); fs.writeSync(fd, 'abc'); fs.writeSync(fd, Buffer.from('def')); fs.closeSync(fd);
const rfd = fs.openSync(path.join(d, 'fd.txt'), 'r'); const buf = Buffer.alloc(4); console.log(fs.readSync(rfd, buf, 0, 4, 2), buf.toString()); fs.closeSync(rfd);
fs.rmSync(d, { recursive: true });
console.log(fs.existsSync(d));
`,
  'fs-async.js': `const fs = require('fs'); const fsp = require('fs/promises'); const path = require('path');
const f = path.join(__dirname, 'async.txt');
const order = [];
fs.writeFile(f, 'hello', (err) => {
  order.push('writeFile ' + err);
  fs.readFile(f, 'utf8', (err2, text) => {
    order.push('readFile ' + err2 + ' ' + text);
    fs.stat(path.join(__dirname, 'missing'), (err3) => order.push('stat ' + err3.code));
  });
});
(async () => {
  await fsp.writeFile(f + '2', 'promised');
  order.push('promises ' + (await fsp.readFile(f + '2', 'utf8')));
  await fsp.mkdir(path.join(__dirname, 'pd', 'x'), { recursive: true });
  order.push('readdir ' + (await fsp.readdir(path.join(__dirname, 'pd'))).join());
  await fsp.rm(path.join(__dirname, 'pd'), { recursive: true });
  try { await fsp.readFile(path.join(__dirname, 'missing')); } catch (e) { order.push('rejects ' + e.code); }
})();
process.on('exit', () => { console.log(order.sort().join('\\n')); });
`,
  'process.js': `console.log(process.argv.length, typeof process.argv[0], process.argv.slice(2));
console.log(process.env.BOX_TEST, process.env.MISSING, 'BOX_TEST' in process.env);
process.env.SET_LATER = 42; console.log(process.env.SET_LATER, typeof process.env.SET_LATER);
console.log(process.platform, typeof process.pid, typeof process.hrtime.bigint(), process.hrtime().length, typeof process.uptime());
const order = [];
setTimeout(() => order.push('timeout'), 0);
setImmediate(() => order.push('immediate'));
process.nextTick(() => order.push('tick'));
Promise.resolve().then(() => order.push('promise'));
queueMicrotask(() => order.push('microtask'));
const t = setInterval(() => { order.push('interval'); if (order.filter((x) => x === 'interval').length === 2) clearInterval(t); }, 1);
const u = setTimeout(() => order.push('never'), 100000); u.unref();
process.on('beforeExit', () => { if (!order.includes('beforeExit')) { order.push('beforeExit'); setTimeout(() => order.push('after beforeExit'), 1); } });
// Microtasks run in this order; timers and immediates of the main module race in node itself: sorted.
process.on('exit', (code) => { console.log(order.slice(0, 3).join(','), order.slice(3).sort().join(',')); console.log('exit', code); });
process.exitCode = 6;
`,
  'util.js': `const util = require('util'); const { EventEmitter, once } = require('events'); const assert = require('assert');
console.log(util.format('%s=%d %j %%', 'a', 42, { b: [1, 2] }), util.format('x', 1, 'y'));
console.log(util.inspect({ a: 1, b: 'two', c: [1, 2, 3], d: { e: null } }), util.inspect('str'), util.inspect([undefined, true]));
console.log(util.types.isDate(new Date()), util.isDeepStrictEqual ? 'has' : 'none', typeof util.promisify(setTimeout));
class A extends EventEmitter {}
const a = new A();
a.once('x', (v) => console.log('once', v));
a.on('x', (v) => console.log('on', v));
a.emit('x', 1); a.emit('x', 2);
console.log(a.listenerCount('x'), a.eventNames());
once(a, 'y').then(([v]) => console.log('awaited', v)); a.emit('y', 'z');
try { assert.strictEqual(1, 2); } catch (e) { console.log(e.code, e.name); }
assert.deepStrictEqual({ a: [1] }, { a: [1] });
const { values, positionals } = util.parseArgs({ args: ['-v', '--name', 'box', 'file'], options: { v: { type: 'boolean' }, name: { type: 'string' } }, allowPositionals: true });
console.log(values.v, values.name, positionals);
`,
  'buffer.js': `const b = Buffer.from('héllo wörld');
console.log(b.length, b.toString('hex'), b.toString('base64'), Buffer.from(b.toString('base64'), 'base64').toString());
console.log(Buffer.concat([Buffer.from('a'), Buffer.alloc(2, 'b')]).toString(), Buffer.byteLength('€'), b.slice(1, 3).toString('hex'));
const w = Buffer.alloc(8); w.writeUInt32BE(0xdeadbeef, 0); w.writeInt16LE(-2, 4); console.log(w.toString('hex'), w.readUInt32BE(0), w.readInt16LE(4));
console.log(Buffer.isBuffer(b), b.equals(Buffer.from('héllo wörld')), Buffer.compare(Buffer.from('a'), Buffer.from('b')), JSON.stringify(Buffer.from('hi')));
console.log(new TextDecoder().decode(new TextEncoder().encode('ünï')), new URL('https://x.org:8080/a/../b?q=1#h').href);
const { fileURLToPath, pathToFileURL } = require('url'); console.log(fileURLToPath('file:///a/b%20c.txt'), pathToFileURL('/x y').href);
const path = require('path'); console.log(path.join('/a', '../b', 'c'), path.resolve('/x', 'y', '..', 'z'), path.extname('f.tar.gz'), path.parse('/h/f.txt').name, path.posix.sep);
const os = require('os'); console.log(os.EOL === '\\n', os.platform(), typeof os.tmpdir(), typeof os.homedir());
`,
  'stream.js': `const fs = require('fs'); const path = require('path'); const { Readable, Transform, Writable } = require('stream'); const { pipeline } = require('stream/promises');
const out = path.join(__dirname, 'streamed.txt');
const upper = new Transform({ transform(chunk, _enc, cb) { cb(null, chunk.toString().toUpperCase()); } });
(async () => {
  await pipeline(Readable.from(['alpha ', 'beta ', 'gamma']), upper, fs.createWriteStream(out));
  const chunks = [];
  await new Promise((resolve, reject) => fs.createReadStream(out, { encoding: 'utf8', highWaterMark: 4 }).on('data', (c) => chunks.push(c)).on('end', resolve).on('error', reject));
  console.log(chunks.length, chunks.join(''));
  let seen = '';
  const sink = new Writable({ write(chunk, _enc, cb) { seen += chunk; cb(); } });
  fs.createReadStream(out, { start: 6, end: 9 }).pipe(sink).on('finish', () => {
    console.log('range', JSON.stringify(seen));
    fs.createReadStream(path.join(__dirname, 'missing')).on('error', (e) => console.log('error', e.code));
  });
})();
`,
  'readline.js': `const fs = require('fs'); const path = require('path'); const readline = require('readline');
const file = path.join(__dirname, 'lines.txt');
fs.writeFileSync(file, 'one\\ntwo\\r\\nthree');
(async () => {
  const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  const lines = [];
  for await (const line of rl) lines.push(line);
  console.log(lines);
  const stdin = readline.createInterface({ input: process.stdin });
  let count = 0;
  stdin.on('line', (l) => { count++; console.log('stdin:', l.toUpperCase()); });
  stdin.on('close', () => console.log('stdin lines', count));
})();
`,
  'require.js': `const names = ['pa' + 'th', './dyn/' + 'data.json', './dyn/mod'];
for (const n of names) {
  const m = require(n);
  console.log(n, typeof m, Object.keys(m).slice(0, 3));
}
const { createRequire } = require('module');
const req = createRequire(__filename);
console.log(req('./dyn/mod').twice(21), req.resolve('./dyn/mod').endsWith('/dyn/mod.js'));
try { require('./dyn/' + 'missing'); } catch (e) { console.log(e.code); }
`,
  'cjs-shapes.js': `const EventEmitter = require('events'); const assert = require('assert'); const Stream = require('stream'); const proc = require('process');
class Bus extends EventEmitter {}
const b = new Bus(); b.on('x', (v) => console.log('bus', v)); b.emit('x', 1);
assert(true); assert.equal(typeof EventEmitter.once, 'function');
console.log(typeof Stream, typeof Stream.Readable, new Stream.PassThrough() instanceof Stream.Readable, proc === process, typeof proc.env.PATH);
const util = require('util'); function Old() { EventEmitter.call(this); } util.inherits(Old, EventEmitter); console.log(new Old() instanceof EventEmitter);
console.log(typeof require('fs').readFileSync, typeof require('path').join, typeof require('os').tmpdir, typeof require('buffer').Buffer, typeof require('url').URL, require('module').builtinModules.includes('fs'));
`,
  'dyn/mod.js': 'exports.twice = (n) => n * 2; exports.dir = require("path").basename(__dirname);\n',
  'dyn/data.json': '{"answer": 42, "list": [1, 2]}\n',
};

const INPUT = 'alpha\nbeta\n';

async function boxRun(name: string, env: string[], args: string[]): Promise<{ stdout: string; code: number }> {
  const base = join(root, `b${++n}`);
  const entries: Entry[] = [dir('usr/'), dir('usr/bin/'), file('usr/bin/node', elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' }), 0o755), dir('tmp/'), dir('etc/'), dir('app/')];
  for (const [f, text] of Object.entries(SCRIPTS)) entries.push(file(`app/${f}`, text));
  await writeLayout(join(base, 'layout'), { layers: [{ entries }], config: { Env: ['PATH=/usr/bin:/bin', ...env], WorkingDir: '/app', Cmd: ['node', name, ...args] } });
  const result = await convertImage(new OciLayoutSource(join(base, 'layout')), '', { workDir: join(base, 'work'), runtimes });
  if (result.kind !== 'box') throw new Error(result.reason);
  await writeBoxToOciLayout(result.box, join(base, 'box'));
  const unpacked = await loadBox(new OciLayoutSource(join(base, 'box')), '', { cacheDir: join(base, 'cache') });
  const run = await runPlanIsolated(await planRun(unpacked), { stdio: 'pipe', input: INPUT });
  assert.equal(run.stderr, '', `${name} in the Box wrote to stderr`);
  // The engines get no stdin: the script reading it is compared with boxproxy's runner only.
  if (name !== 'readline.js') await assertBoxRunsAlikeInEngines(join(base, 'box'), {}, run);
  return { stdout: run.stdout, code: run.exitCode };
}

async function nodeRun(name: string, env: string[], args: string[]): Promise<{ stdout: string; code: number }> {
  const app = join(root, `n${++n}`, 'app');
  await mkdir(app, { recursive: true });
  for (const [f, text] of Object.entries(SCRIPTS)) {
    await mkdir(dirname(join(app, f)), { recursive: true });
    await writeFile(join(app, f), text);
  }
  const r = spawnSync(process.execPath, [name, ...args], { cwd: app, env: { PATH: '/usr/bin:/bin', ...Object.fromEntries(env.map((e) => e.split('='))) }, encoding: 'utf8', input: INPUT });
  assert.equal(r.stderr, '', `${name} under node wrote to stderr`);
  return { stdout: r.stdout, code: r.status ?? -1 };
}

describe('Node layer: a Box prints what node prints', () => {
  for (const name of Object.keys(SCRIPTS).filter((n) => !n.includes('/'))) {
    test(name, async () => {
      const env = ['BOX_TEST=yes'];
      const args = ['one', 'two'];
      const [native, box] = [await nodeRun(name, env, args), await boxRun(name, env, args)];
      assert.equal(box.stdout, native.stdout);
      assert.equal(box.code, native.code);
    });
  }
});
