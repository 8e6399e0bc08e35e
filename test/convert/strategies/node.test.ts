import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { extract } from 'tar';
import { loadBox } from '../../../src/box/layout.js';
import { planRun, runPlanIsolated } from '../../../src/box/runner.js';
import { convertImage, writeBoxToOciLayout, type ConvertResult } from '../../../src/convert/pipeline.js';
import { rewriteModuleMeta } from '../../../src/convert/node/bundle.js';
import type { RuntimeCatalog } from '../../../src/convert/runtimes.js';
import { nodeFromShebang, parseNodeArgs, QJS_WASM_BOX_PATH } from '../../../src/convert/strategies/node.js';
import { OciLayoutSource } from '../../../src/image/oci-layout.js';
import type { ImageConfig } from '../../../src/oci/types.js';
import { dir, elf, file, symlink, tempDir, writeLayout, type Entry, type ImageSpec } from '../helpers.js';
import { runPlainWasi } from '../../runtimes/helpers.js';
import { quickjsCatalog } from '../node/helpers.js';

let root: string;
let cleanup: () => Promise<void>;
let runtimes: RuntimeCatalog;
let n = 0;
before(async () => {
  ({ path: root, cleanup } = await tempDir('boxproxy-node-'));
  runtimes = await quickjsCatalog();
});
after(async () => cleanup());

const ELF_DYN = elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' });

/** The shape of Debian's nodejs: /usr/bin/node (ELF), libnode.so.108 (Node 18's ABI), /etc, /tmp. */
function nodeBase(): Entry[] {
  return [
    dir('usr/'),
    dir('usr/bin/'),
    file('usr/bin/node', ELF_DYN, 0o755),
    symlink('usr/bin/nodejs', 'node'),
    dir('usr/share/'),
    dir('usr/share/nodejs/'),
    file('usr/share/nodejs/unrelated.js', 'module.exports = 1;\n'),
    dir('usr/lib/'),
    dir('usr/lib/x86_64-linux-gnu/'),
    file('usr/lib/x86_64-linux-gnu/libnode.so.108', elf({ type: 3 })),
    dir('etc/'),
    file('etc/hostname', 'box\n'),
    dir('tmp/', 0o1777),
  ];
}

const APP = `'use strict';
const fs = require('fs');
const path = require('node:path');
const { EventEmitter } = require('events');
const util = require('util');
const os = require('os');
const pad = require('left-pad');
const cfg = require('./config.json');
const { shout } = require('./lib/shout');

const data = fs.readFileSync(path.join(__dirname, 'data.txt'), 'utf8').trim();
const out = path.join(os.tmpdir(), 'box-out.txt');
fs.writeFileSync(out, Buffer.from(data.toUpperCase()));
const e = new EventEmitter();
e.on('hi', (who) => console.log(util.format('hi %s from %s', who, cfg.name)));
e.emit('hi', process.argv[2]);
console.log(pad(String(cfg.width), 5, '0'), shout(data), fs.readFileSync(out, 'utf8'));
console.log(JSON.stringify({ argv: process.argv.slice(1), cwd: process.cwd(), env: process.env.GREETING, version: process.version, file: __filename, main: require.main === module }));
console.log(fs.readdirSync(__dirname).sort().join(','), fs.statSync('/app/data.txt').size, fs.existsSync('/nope'));
try { fs.readFileSync('/nope'); } catch (err) { console.log(err.code, err.message); }
setTimeout(() => {
  fs.promises.readFile('/app/data.txt', 'utf8').then((t) => {
    console.log('later', t.length);
    process.exitCode = 3;
  });
}, 5);
process.on('exit', (code) => console.log('exit', code));
`;

function appImage(config: Partial<ImageConfig['config']> = {}, extra: Entry[] = []): ImageSpec {
  return {
    created: '2024-01-02T03:04:05Z',
    layers: [
      { entries: nodeBase() },
      {
        entries: [
          dir('app/'),
          file('app/app.js', APP),
          file('app/package.json', JSON.stringify({ name: 'box-app', version: '1.0.0', dependencies: { 'left-pad': '1.3.0' } })),
          file('app/config.json', JSON.stringify({ name: 'box-app', width: 42 })),
          file('app/data.txt', 'data next to the script\n'),
          dir('app/lib/'),
          file('app/lib/shout.js', 'exports.shout = (s) => s.toUpperCase() + "!";\n'),
          dir('app/node_modules/'),
          dir('app/node_modules/left-pad/'),
          file('app/node_modules/left-pad/package.json', JSON.stringify({ name: 'left-pad', version: '1.3.0', main: 'index.js' })),
          file('app/node_modules/left-pad/index.js', "module.exports = function leftPad(str, len, ch) { str = String(str); ch = ch || ' '; while (str.length < len) str = ch + str; return str; };\n"),
          ...extra,
        ],
      },
    ],
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello from the image'],
      WorkingDir: '/app',
      Cmd: ['node', '/app/app.js', 'world'],
      ...config,
    },
  };
}

async function convert(spec: ImageSpec): Promise<{ result: ConvertResult; base: string }> {
  const base = join(root, `c${++n}`);
  await writeLayout(join(base, 'layout'), spec);
  const result = await convertImage(new OciLayoutSource(join(base, 'layout')), '', { workDir: join(base, 'work'), runtimes });
  return { result, base };
}

function boxOf(r: ConvertResult) {
  if (r.kind !== 'box') throw new Error(`expected a Box, got: ${r.reason}\n${JSON.stringify(r.report.strategies)}`);
  return r;
}

async function runInRunner(r: ConvertResult, base: string, args?: string[]) {
  const layout = join(base, 'box');
  await writeBoxToOciLayout(boxOf(r).box, layout);
  const unpacked = await loadBox(new OciLayoutSource(layout), '', { cacheDir: join(base, 'box-cache') });
  return runPlanIsolated(await planRun(unpacked, args ? { args } : {}), { stdio: 'pipe' });
}

/** The Box's layers extracted with tar and run like runwasi: rootfs as "/", config args and env only. */
async function runPlain(r: ConvertResult, base: string) {
  const box = boxOf(r).box;
  const rootfs = join(base, 'plain-rootfs');
  await mkdir(rootfs, { recursive: true });
  for (const layer of box.layers) await extract({ file: layer.path, cwd: rootfs });
  const c = (JSON.parse(box.config.bytes.toString('utf8')) as ImageConfig).config ?? {};
  const argv = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  return runPlainWasi(join(rootfs, (argv[0] as string).slice(1)), argv, c.Env ?? [], { '/': rootfs });
}

/** What `node /app/app.js world` prints in the image (but for process.version, v18.19.0 in bookworm). */
const EXPECTED = [
  'hi world from box-app',
  '00042 DATA NEXT TO THE SCRIPT! DATA NEXT TO THE SCRIPT',
  JSON.stringify({ argv: ['/app/app.js', 'world'], cwd: '/app', env: 'hello from the image', version: 'v18.0.0', file: '/app/app.js', main: true }),
  'app.js,config.json,data.txt,lib,node_modules,package.json 24 false',
  "ENOENT ENOENT: no such file or directory, open '/nope'",
  'later 24',
  'exit 3',
  '',
].join('\n');

describe('node strategy: parsing', () => {
  test('parseNodeArgs finds the script, preloads and options a Box cannot honour', () => {
    assert.deepEqual(parseNodeArgs(['--max-old-space-size=512', '-r', 'dotenv/config', 'app.js', 'x']), {
      ok: true, script: 'app.js', scriptIndex: 3, preloads: ['dotenv/config'], execArgv: ['--max-old-space-size=512', '-r', 'dotenv/config'], ignored: ['--max-old-space-size=512'],
    });
    assert.equal(parseNodeArgs(['-e', '1']).ok, false);
    assert.match((parseNodeArgs([]) as { reason: string }).reason, /REPL/);
    assert.match((parseNodeArgs(['--loader', 'x', 'a.js']) as { reason: string }).reason, /--loader is not supported/);
  });

  test('shebangs naming node', () => {
    assert.deepEqual(nodeFromShebang({ kind: 'script', interpreter: '/usr/bin/env', arg: 'node' }), { interpreter: 'node', options: [] });
    assert.equal(nodeFromShebang({ kind: 'script', interpreter: '/usr/bin/python3' }), undefined);
  });

  test('rewriteModuleMeta gives each file its own __dirname, __filename and import.meta', () => {
    assert.equal(rewriteModuleMeta('console.log(__dirname)', '/app/lib/x.js', { esm: false, entry: false }), 'var __dirname = "/app/lib";console.log(__dirname)');
    assert.equal(rewriteModuleMeta('const __dirname = 1; f(__dirname)', '/a/x.js', { esm: false, entry: false }), 'const __dirname = 1; f(__dirname)');
    assert.equal(rewriteModuleMeta('if (require.main === module) go()', '/a/x.js', { esm: false, entry: true }), 'if (module === module) go()');
    assert.equal(rewriteModuleMeta('f(import.meta.url)', '/a/b c.mjs', { esm: true, entry: true }), 'f("file:///a/b%20c.mjs")');
  });
});

describe('node strategy: Boxes', () => {
  test('a CommonJS app with fs, path, process, events, JSON and an npm dependency runs in the runner and in plain WASI', async () => {
    const { result, base } = await convert(appImage());
    const r = boxOf(result);
    assert.equal(r.report.chosen, 'node');
    const config = (JSON.parse(r.box.config.bytes.toString('utf8')) as ImageConfig).config ?? {};
    assert.deepEqual(config.Entrypoint, [QJS_WASM_BOX_PATH, '--std', '--script', '/.boxproxy/node/app.js']);
    assert.deepEqual(config.Cmd, ['world']);
    assert.match(config.Labels?.['dev.boxproxy.runtime'] ?? '', /^quickjs@2025\.04\.26$/);
    const inRunner = await runInRunner(result, base);
    assert.equal(inRunner.stdout, EXPECTED, inRunner.stderr);
    assert.equal(inRunner.exitCode, 3, inRunner.stderr);
    const plain = await runPlain(result, base);
    assert.equal(plain.stdout, EXPECTED, plain.stderr);
    assert.equal(plain.code, 3);
  });
});
