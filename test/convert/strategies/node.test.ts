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
import { assertBoxRunsAlikeInEngines } from '../../helpers/engines/index.js';
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

/** boxproxy's runner (in a child process); then node:wasi, wasmtime and wazero must print and exit the same. */
async function runInRunner(r: ConvertResult, base: string, args?: string[]) {
  const layout = join(base, 'box');
  await writeBoxToOciLayout(boxOf(r).box, layout);
  const unpacked = await loadBox(new OciLayoutSource(layout), '', { cacheDir: join(base, 'box-cache') });
  const run = await runPlanIsolated(await planRun(unpacked, args ? { args } : {}), { stdio: 'pipe' });
  await assertBoxRunsAlikeInEngines(layout, args ? { args } : {}, run);
  return run;
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
    assert.deepEqual(config.Entrypoint, [QJS_WASM_BOX_PATH, '--std', '/.boxproxy/node/app.qbc']);
    assert.deepEqual(config.Cmd, ['node', '/app/app.js', 'world']);
    assert.match(config.Labels?.['dev.boxproxy.runtime'] ?? '', /^quickjs@2025\.04\.26$/);
    const inRunner = await runInRunner(result, base);
    assert.equal(inRunner.stdout, EXPECTED, inRunner.stderr);
    assert.equal(inRunner.exitCode, 3, inRunner.stderr);
    const plain = await runPlain(result, base);
    assert.equal(plain.stdout, EXPECTED, plain.stderr);
    assert.equal(plain.code, 3);
    // Cmd is the image's command line: replacing it works as with `docker run IMAGE node app.js other`.
    const replaced = await runInRunner(result, base, ['nodejs', '--no-warnings', 'app.js', 'again']);
    assert.match(replaced.stdout, /^hi again from box-app$/m, replaced.stderr);
    const other = await runInRunner(result, base, ['node', '/app/lib/shout.js']);
    assert.equal(other.exitCode, 1);
    assert.match(other.stderr, /\/app\/lib\/shout\.js: this Box bundles \/app\/app\.js only/);
  });

  test('an ES module app with top-level await, import.meta and an ESM package with "exports" runs', async () => {
    const { result, base } = await convert({
      layers: [
        { entries: nodeBase() },
        {
          entries: [
            dir('srv/'),
            file('srv/package.json', JSON.stringify({ name: 'esm-app', type: 'module' })),
            file('srv/main.js', [
              "import { readFile } from 'node:fs/promises';",
              "import { dirname, join } from 'path';",
              "import { fileURLToPath } from 'node:url';",
              "import { greet } from 'greeter';",
              'const here = dirname(fileURLToPath(import.meta.url));',
              "const text = await readFile(join(here, 'msg.txt'), 'utf8');",
              'console.log(greet(text.trim()), here, process.argv.length);',
              'await new Promise((r) => setTimeout(r, 3));',
              "console.log('done');",
              '',
            ].join('\n')),
            file('srv/msg.txt', 'esm\n'),
            dir('srv/node_modules/'),
            dir('srv/node_modules/greeter/'),
            dir('srv/node_modules/greeter/dist/'),
            file('srv/node_modules/greeter/package.json', JSON.stringify({ name: 'greeter', type: 'module', exports: { '.': { import: './dist/index.js', require: './dist/index.cjs' } } })),
            file('srv/node_modules/greeter/dist/index.js', 'export const greet = (who) => `hello ${who}`;\n'),
          ],
        },
      ],
      config: { WorkingDir: '/srv', Entrypoint: ['/usr/bin/node'], Cmd: ['main.js'] },
    });
    const r = boxOf(result);
    const config = (JSON.parse(r.box.config.bytes.toString('utf8')) as ImageConfig).config ?? {};
    assert.deepEqual(config.Entrypoint, [QJS_WASM_BOX_PATH, '--std', '/.boxproxy/node/app.qbc', '/usr/bin/node']);
    assert.deepEqual(config.Cmd, ['main.js']);
    const run = await runInRunner(result, base);
    assert.equal(run.stdout, 'hello esm /srv 2\ndone\n', run.stderr);
    assert.equal(run.exitCode, 0);
  });

  test('exit codes: process.exit, uncaught exceptions and unhandled rejections end the Box as they end node', async () => {
    const cases: Array<[string, number, string]> = [
      ["console.log('a'); process.exit(5); console.log('b');", 5, 'a\n'],
      ["setTimeout(() => { throw new Error('late'); }, 1); process.on('exit', (c) => console.log('exit', c));", 1, 'exit 1\n'],
      ["Promise.reject(new Error('nobody')); setTimeout(() => console.log('never'), 20);", 1, ''],
      ["Promise.reject(new Error('caught')).catch((e) => console.log(e.message));", 0, 'caught\n'],
      ["throw new TypeError('at start');", 1, ''],
    ];
    for (const [code, exit, stdout] of cases) {
      const { result, base } = await convert(appImage({ Cmd: ['node', '/app/x.js'] }, [file('app/x.js', code)]));
      const run = await runInRunner(result, base);
      assert.equal(run.stdout, stdout, `${code}\n${run.stderr}`);
      assert.equal(run.exitCode, exit, `${code}\n${run.stderr}`);
    }
  });

  test('a script with a node shebang as ENTRYPOINT keeps its fixed arguments', async () => {
    const { result, base } = await convert(
      appImage({ Entrypoint: ['/app/cli.js', 'fixed'], Cmd: ['given'] }, [file('app/cli.js', '#!/usr/bin/env node\nconsole.log(process.argv.slice(2).join(" "), __filename);\n', 0o755)]),
    );
    const r = boxOf(result);
    const config = (JSON.parse(r.box.config.bytes.toString('utf8')) as ImageConfig).config ?? {};
    assert.deepEqual(config.Cmd, ['given']);
    const run = await runInRunner(result, base);
    assert.equal(run.stdout, 'fixed given /app/cli.js\n', run.stderr);
    const replaced = await runInRunner(result, base, ['other']);
    assert.equal(replaced.stdout, 'fixed other /app/cli.js\n', replaced.stderr);
  });
});

describe('node strategy: reproducible', () => {
  test('the same image converts to the same Box bytes from another work directory', async () => {
    const base = join(root, `c${++n}`);
    await writeLayout(join(base, 'layout'), appImage());
    const once = async (work: string) => boxOf(await convertImage(new OciLayoutSource(join(base, 'layout')), '', { workDir: join(base, work), runtimes }));
    const [first, second] = [await once('work-a'), await once('deeper/work-b')];
    assert.equal(first.box.manifest.digest, second.box.manifest.digest);
  });
});

describe('node strategy: refusals', () => {
  const refusal = async (extra: Entry[], cmd = ['node', '/app/x.js']): Promise<string> => {
    const { result } = await convert(appImage({ Cmd: cmd }, extra));
    assert.equal(result.kind, 'unconvertible', JSON.stringify(result.report.notes));
    return (result as { reason: string }).reason;
  };

  test('an app whose own code needs sockets, child processes or threads is refused, naming what and where', async () => {
    assert.match(await refusal([file('app/x.js', "require('http').createServer().listen(80);")]), /needs .*sockets: \/app\/x\.js imports node:http/);
    assert.match(await refusal([file('app/x.js', "const { execSync } = require('node:child_process'); execSync('ls');")]), /child processes: \/app\/x\.js imports node:child_process/);
    assert.match(await refusal([file('app/x.js', "import { Worker } from 'worker_threads'; new Worker('./w.js');")]), /threads: \/app\/x\.js imports node:worker_threads/);
  });

  test('native addons are refused, naming the addon and who requires it', async () => {
    const reason = await refusal([
      file('app/x.js', "const db = require('fastdb'); console.log(db);"),
      dir('app/node_modules/fastdb/'),
      file('app/node_modules/fastdb/package.json', JSON.stringify({ name: 'fastdb', main: 'index.js' })),
      file('app/node_modules/fastdb/index.js', "module.exports = require('./build/Release/fastdb.node');"),
      dir('app/node_modules/fastdb/build/'),
      dir('app/node_modules/fastdb/build/Release/'),
      file('app/node_modules/fastdb/build/Release/fastdb.node', elf({ type: 3 })),
    ]);
    assert.match(reason, /native addons \(\.node\): \/app\/node_modules\/fastdb\/build\/Release\/fastdb\.node, required by \/app\/node_modules\/fastdb\/index\.js/);
  });

  test('a dependency that only mentions child_process converts, with a note; calling into it fails clearly', async () => {
    const { result, base } = await convert(
      appImage({ Cmd: ['node', '/app/x.js'] }, [
        file('app/x.js', "const cli = require('tinycli'); console.log(cli.name); try { cli.run(); } catch (e) { console.log(e.code); }"),
        dir('app/node_modules/tinycli/'),
        file('app/node_modules/tinycli/package.json', JSON.stringify({ name: 'tinycli', main: 'index.js' })),
        file('app/node_modules/tinycli/index.js', "const cp = require('child_process'); exports.name = 'tinycli'; exports.run = () => cp.spawn('x');"),
      ]),
    );
    const r = boxOf(result);
    assert.ok(r.report.notes.some((note) => /node:child_process .* dependencies only/.test(note)), r.report.notes.join('\n'));
    const run = await runInRunner(result, base);
    assert.equal(run.stdout, 'tinycli\nERR_BOXPROXY_UNSUPPORTED\n', run.stderr);
  });

  test('a missing module is refused with the bundler\'s message; node -e is refused', async () => {
    assert.match(await refusal([file('app/x.js', "require('not-installed');")]), /bundling the app failed: \/app\/x\.js:1: Could not resolve "not-installed"/);
    assert.match(await refusal([], ['node', '-e', 'console.log(1)']), /node -e .* not supported/);
  });
});

