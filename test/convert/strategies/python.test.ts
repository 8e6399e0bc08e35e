import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { extract, list } from 'tar';
import { loadBox } from '../../../src/box/layout.js';
import { planRun, runPlanIsolated } from '../../../src/box/runner.js';
import { convertImage, writeBoxToOciLayout, type ConvertOptions, type ConvertResult } from '../../../src/convert/pipeline.js';
import { OciLayoutSource } from '../../../src/image/oci-layout.js';
import { native } from '../../../src/convert/strategies/native.js';
import { importedNames, pythonMain, pythonFromShebang, pythonStrategy, PYTHON_WASM_BOX_PATH } from '../../../src/convert/strategies/python.js';
import type { ImageConfig } from '../../../src/oci/types.js';
import { DEFAULT_TRIAL_LIMITS, runTrial, type TrialLimits, type TrialSpec } from '../../../src/convert/trial.js';
import type { OciRuntimeCatalog } from '../../../src/runtimes/catalog.js';
import { dir, elf, file, symlink, tempDir, writeLayout, type ImageSpec } from '../helpers.js';
import { pythonCatalog, runPlainWasi } from '../../runtimes/helpers.js';
import { assertBoxRunsAlikeInEngines } from '../../helpers/engines/index.js';

let root: string;
let cleanup: () => Promise<void>;
let runtimes: OciRuntimeCatalog;
let n = 0;
before(async () => {
  ({ path: root, cleanup } = await tempDir('boxproxy-python-'));
  runtimes = await pythonCatalog();
});
after(async () => cleanup());

const ELF_DYN = elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' });
const ELF_SO = elf({ type: 3 });
const SITE = 'usr/local/lib/python3.11/site-packages';

/** The shape of python:3.11-slim: interpreter symlinks in /usr/local/bin, a native stdlib, site-packages. */
function pythonBase(): ImageSpec['layers'][number] {
  return {
    entries: [
      dir('usr/'),
      dir('usr/bin/'),
      file('usr/bin/env', ELF_DYN, 0o755),
      dir('usr/local/'),
      dir('usr/local/bin/'),
      file('usr/local/bin/python3.11', ELF_DYN, 0o755),
      symlink('usr/local/bin/python3', 'python3.11'),
      symlink('usr/local/bin/python', 'python3'),
      dir('usr/local/lib/'),
      dir('usr/local/lib/python3.11/'),
      // If the image's own stdlib reached the Box, this would end every run.
      file('usr/local/lib/python3.11/os.py', 'raise SystemExit("the image\'s native stdlib was used")\n'),
      dir('usr/local/lib/python3.11/lib-dynload/'),
      file('usr/local/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so', ELF_SO),
      dir(`${SITE}/`),
      dir('usr/share/'),
      file('usr/share/unrelated.txt', 'not part of the app\n'),
      dir('etc/'),
      file('etc/hostname', 'box\n'),
    ],
  };
}

const APP_MAIN = `import json, os, sys, zlib, gzip
import greet
from extra import EXTRA
with open("data.txt") as f:
    data = f.read().strip()
blob = b"x" * 1000
assert gzip.decompress(gzip.compress(blob)) == blob and zlib.decompress(zlib.compress(blob)) == blob
print(greet.hello(sys.argv[1]))
print(json.dumps({"cwd": os.getcwd(), "data": data, "env": os.environ.get("GREETING"), "extra": EXTRA, "argv": sys.argv}))
`;

function appImage(extraConfig: Partial<ImageConfig['config']> = {}): ImageSpec {
  return {
    created: '2024-01-02T03:04:05Z',
    layers: [
      pythonBase(),
      {
        entries: [
          dir(`${SITE}/greet/`),
          file(`${SITE}/greet/__init__.py`, 'def hello(name):\n    return f"hello, {name}"\n'),
          dir(`${SITE}/greet/__pycache__/`),
          file(`${SITE}/greet/__pycache__/__init__.cpython-311.pyc`, 'stale bytecode'),
          dir(`${SITE}/greet-1.0.dist-info/`),
          file(`${SITE}/greet-1.0.dist-info/METADATA`, 'Name: greet\nVersion: 1.0\n'),
          dir('usr/lib/'),
          dir('usr/lib/python3/'),
          dir('usr/lib/python3/dist-packages/'),
          file('usr/lib/python3/dist-packages/extra.py', 'EXTRA = "from dist-packages"\n'),
          dir('app/'),
          file('app/main.py', APP_MAIN),
          file('app/data.txt', 'data next to the script\n'),
        ],
      },
    ],
    config: {
      Env: ['PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin', 'PYTHON_VERSION=3.11.9', 'GREETING=hi from the image'],
      WorkingDir: '/app',
      Cmd: ['python', 'main.py', 'world'],
      ...extraConfig,
    },
  };
}

async function convert(spec: ImageSpec, opts: Partial<ConvertOptions> = {}): Promise<{ result: ConvertResult; base: string }> {
  const base = join(root, `c${++n}`);
  await writeLayout(join(base, 'layout'), spec);
  const result = await convertImage(new OciLayoutSource(join(base, 'layout')), '', { workDir: join(base, 'work'), runtimes, ...opts });
  return { result, base };
}

function boxOf(r: ConvertResult) {
  if (r.kind !== 'box') throw new Error(`expected a Box, got: ${r.reason}\n${JSON.stringify(r.report.strategies)}`);
  return r;
}

/**
 * Writes the Box as an OCI layout and runs it with boxproxy's runner (in a child process); then checks node:wasi,
 * wasmtime and wazero run it the same.
 */
async function runInRunner(r: ConvertResult, base: string, args?: string[]) {
  const box = boxOf(r).box;
  const layout = join(base, 'box');
  await writeBoxToOciLayout(box, layout);
  const unpacked = await loadBox(new OciLayoutSource(layout), '', { cacheDir: join(base, 'box-cache') });
  const result = await runPlanIsolated(await planRun(unpacked, args ? { args } : {}), { stdio: 'pipe' });
  await assertBoxRunsAlikeInEngines(layout, args ? { args } : {}, result);
  return result;
}

/** Extracts the Box's layers with the tar package and runs it like runwasi: rootfs as "/", config args and env only. */
async function runPlain(r: ConvertResult, base: string) {
  const box = boxOf(r).box;
  const rootfs = join(base, 'plain-rootfs');
  await mkdir(rootfs, { recursive: true });
  for (const layer of box.layers) await extract({ file: layer.path, cwd: rootfs });
  const config = JSON.parse(box.config.bytes.toString('utf8')) as ImageConfig;
  const c = config.config ?? {};
  const argv = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  return runPlainWasi(join(rootfs, (argv[0] as string).slice(1)), argv, c.Env ?? [], { '/': rootfs });
}

describe('python strategy: parsing', () => {
  test('pythonMain finds the script, -m module or -c code', () => {
    assert.deepEqual(pythonMain(['-u', 'app.py', '-x']), { kind: 'script', path: 'app.py' });
    assert.deepEqual(pythonMain(['-W', 'ignore', '-B', 'srv.py']), { kind: 'script', path: 'srv.py' });
    assert.deepEqual(pythonMain(['-m', 'http.server', '8000']), { kind: 'module', name: 'http.server' });
    assert.deepEqual(pythonMain(['-uc', 'print(1)']), { kind: 'code', code: 'print(1)' });
    assert.deepEqual(pythonMain(['-i']), { kind: 'none' });
  });

  test('importedNames: a static scan of import statements', () => {
    const src = 'import os, sys as system\nfrom numpy.linalg import norm  # x\n  import a.b.c\nfrom . import sibling\nx = importlib.import_module("yaml")\n# import commented\n';
    assert.deepEqual(importedNames(src), ['a', 'numpy', 'os', 'sys', 'yaml']);
  });

  test('shebangs naming python', () => {
    assert.deepEqual(pythonFromShebang({ kind: 'script', interpreter: '/usr/bin/env', arg: 'python3' }), { interpreter: 'python3', options: [] });
    assert.deepEqual(pythonFromShebang({ kind: 'script', interpreter: '/usr/local/bin/python3.11', arg: '-u' }), {
      interpreter: '/usr/local/bin/python3.11',
      options: ['-u'],
    });
    assert.equal(pythonFromShebang({ kind: 'script', interpreter: '/bin/sh' }), undefined);
  });
});

describe('python strategy: Boxes', () => {
  test('an app with a pure-Python package and a relative script under WORKDIR converts and runs', async () => {
    const { result, base } = await convert(appImage());
    const r = boxOf(result);
    assert.equal(r.report.chosen, 'python');
    const config = JSON.parse(r.box.config.bytes.toString('utf8')) as ImageConfig;
    assert.equal(config.os, 'wasip1');
    assert.deepEqual(config.config?.Entrypoint, [PYTHON_WASM_BOX_PATH]);
    assert.deepEqual(config.config?.Cmd, ['main.py', 'world']);
    assert.equal(config.config?.WorkingDir, '/app');
    const env = config.config?.Env ?? [];
    // CPython finds its prefix from where python.wasm sits, as the image's interpreter does: no PYTHONHOME.
    assert.ok(!env.some((e) => e.startsWith('PYTHONHOME=')), env.join(' '));
    assert.ok(env.includes('PYTHONPATH=/usr/lib/python3/dist-packages'), env.join(' '));
    assert.ok(env.includes('GREETING=hi from the image'));
    assert.ok(env.includes('PWD=/app'));
    assert.match(config.config?.Labels?.['dev.boxproxy.runtime'] ?? '', /^python@3\.11\./);
    assert.ok(r.report.notes.some((note) => note.includes("image's own Python stdlib")), r.report.notes.join('\n'));

    const expected = (out: string) => {
      const [hello, json] = out.trim().split('\n');
      assert.equal(hello, 'hello, world');
      assert.deepEqual(JSON.parse(json ?? ''), {
        cwd: '/app',
        data: 'data next to the script',
        env: 'hi from the image',
        extra: 'from dist-packages',
        argv: ['main.py', 'world'],
      });
    };
    const inRunner = await runInRunner(result, base);
    assert.equal(inRunner.exitCode, 0, inRunner.stderr);
    expected(inRunner.stdout);

    const plain = await runPlain(result, base);
    assert.equal(plain.code, 0, plain.stderr);
    expected(plain.stdout);

    // Files outside the app, site-packages and /etc, the image's stdlib and stale bytecode stay out of the Box.
    const entries: string[] = [];
    await list({ file: r.box.layers[1]?.path as string, onReadEntry: (e) => entries.push(e.path) });
    assert.ok(!entries.includes('usr/share/unrelated.txt'));
    assert.ok(!entries.includes(`${SITE}/greet/__pycache__/__init__.cpython-311.pyc`));
    assert.ok(!entries.includes('usr/local/lib/python3.11/os.py'));
    for (const kept of ['etc/hostname', 'app/data.txt', `${SITE}/greet/__init__.py`, 'usr/lib/python3/dist-packages/extra.py']) assert.ok(entries.includes(kept), kept);
  });

  test('converting twice gives the same Box digest', async () => {
    const base = join(root, `c${++n}`);
    await writeLayout(join(base, 'layout'), appImage());
    const once = (work: string) => convertImage(new OciLayoutSource(join(base, 'layout')), '', { workDir: join(base, work), runtimes });
    const a = boxOf(await once('work-a'));
    const b = boxOf(await once('work-b'));
    assert.equal(a.box.manifest.digest, b.box.manifest.digest);
    assert.deepEqual(
      a.box.layers.map((l) => l.descriptor.digest),
      b.box.layers.map((l) => l.descriptor.digest),
    );
  });

  test('a shebang script naming python3 through env', async () => {
    const spec: ImageSpec = {
      layers: [
        pythonBase(),
        {
          entries: [
            dir('srv/'),
            dir('srv/bin/'),
            file('srv/bin/tool', '#!/usr/bin/env python3\nimport sys, platform\nprint("shebang", sys.argv[1:], platform.python_version())\n', 0o755),
          ],
        },
      ],
      config: { Entrypoint: ['/srv/bin/tool'], Cmd: ['one', 'two'] },
    };
    const { result, base } = await convert(spec);
    const r = boxOf(result);
    const config = JSON.parse(r.box.config.bytes.toString('utf8')) as ImageConfig;
    assert.deepEqual(config.config?.Entrypoint, [PYTHON_WASM_BOX_PATH, '/srv/bin/tool']);
    assert.deepEqual(config.config?.Cmd, ['one', 'two']);
    const run = await runInRunner(result, base);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.match(run.stdout, /^shebang \['one', 'two'\] 3\.11\.\d+\n$/);
    const replaced = await runInRunner(result, join(base, 'again'), ['three']);
    assert.match(replaced.stdout, /^shebang \['three'\]/);
  });

  test('an app whose import fails in the Box is refused by default with the interpreter\'s error', async () => {
    const spec = appImage({ Cmd: ['python3', '/app/uses_native.py'] });
    (spec.layers[1]?.entries ?? []).push(
      dir(`${SITE}/fastjson/`),
      file(`${SITE}/fastjson/__init__.py`, 'from ._speedups import dumps\n'),
      file(`${SITE}/fastjson/_speedups.cpython-311-x86_64-linux-gnu.so`, ELF_SO),
      file(`${SITE}/_cffi_backend.cpython-311-x86_64-linux-gnu.so`, ELF_SO),
      dir(`${SITE}/wrapper/`),
      file(`${SITE}/wrapper/__init__.py`, 'import fastjson\n'),
      file('app/uses_native.py', 'import wrapper\nprint(wrapper)\n'),
      file('app/pure.py', 'import greet\nprint(greet.hello("pure"))\n'),
    );
    const refused = (await convert(spec)).result;
    assert.equal(refused.kind, 'unconvertible');
    if (refused.kind !== 'unconvertible') return;
    assert.match(refused.reason, /^import wrapper: ModuleNotFoundError: No module named 'fastjson\._speedups'/);
    assert.match(refused.reason, /tried in the Box's own python interpreter: 0 of 1 passed/);
    assert.deepEqual(refused.report.trial?.tried, ['import wrapper']);

    // Configured to build and warn: a Box, with the warning in the report.
    const warned = boxOf((await convert(spec, { strategies: [pythonStrategy({ nativeExtensions: 'warn' }), native] })).result);
    assert.ok(warned.report.notes.some((note) => /^WARNING: import wrapper: ModuleNotFoundError/.test(note)), warned.report.notes.join('\n'));

    // The same image with an entrypoint that does not import them: a Box listing them, and it runs.
    const pureSpec = appImage({ Cmd: ['python3', '/app/pure.py'], Env: ['PYTHON_VERSION=3.12.1'] });
    pureSpec.layers[1]?.entries?.push(...(spec.layers[1]?.entries ?? []).filter((e) => /fastjson|_cffi|wrapper|pure\.py/.test(e.path)));
    const { result, base } = await convert(pureSpec);
    const r = boxOf(result);
    assert.ok(r.report.notes.some((note) => note.includes('native extensions (*.so, left out): _cffi_backend, fastjson')), r.report.notes.join('\n'));
    assert.ok(r.report.notes.some((note) => /image has Python 3\.12\.1; the nearest runtime is CPython 3\.11/.test(note)), r.report.notes.join('\n'));
    const config = JSON.parse(r.box.config.bytes.toString('utf8')) as ImageConfig;
    assert.equal(config.config?.Labels?.['dev.boxproxy.python.native-extensions'], '_cffi_backend,fastjson');
    const run = await runInRunner(result, base);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout, 'hello, pure\n');
  });

  test('without a Python runtime in the catalog the image is refused with the way to build one', async () => {
    const { result } = await convert(appImage(), { runtimes: { ruby: async () => undefined } });
    assert.equal(result.kind, 'unconvertible');
    if (result.kind === 'unconvertible') assert.match(result.reason, /boxproxy runtimes build python/);
  });
});


describe('trial stage', () => {
  /** A converted Box (trial off) and a trial of `probes` with a custom program in its interpreter. */
  async function trialOf(program: string, probes: string[], limits?: Partial<TrialLimits>) {
    const { result, base } = await convert(appImage(), { trial: false });
    const spec: TrialSpec = { language: 'python', probes, onFailure: 'refuse', command: (marker) => ['-c', program, marker, ...probes] };
    return runTrial(boxOf(result).box, spec, join(base, 'trial-work'), { ...DEFAULT_TRIAL_LIMITS, ...limits });
  }

  test('only lines carrying the run\'s random marker count as answers', async () => {
    const program = `import sys, json
marker, probes = sys.argv[1], sys.argv[2:]
print("boxproxy-trial-0000 " + json.dumps({"probe": probes[0], "ok": True}))
print(marker + " " + json.dumps({"probe": probes[0], "ok": False, "error": "NameError: x"}))
`;
    const report = await trialOf(program, ['import a', 'import b']);
    assert.deepEqual(report.passed, []);
    assert.deepEqual(report.failed[0], { probe: 'import a', ok: false, error: 'NameError: x' });
    assert.match(report.failed[1]?.error ?? '', /^no answer: the interpreter exited with status 0/);
  });

  test('a trial past its time limit is killed and says so', async () => {
    const report = await trialOf('while True: pass', ['import slow'], { timeoutMs: 3000 });
    assert.equal(report.killed, 'timeout');
    assert.match(report.failed[0]?.error ?? '', /no answer: the trial ran past 3000 ms/);
  });

  test('a trial past its memory limit is killed and says so', async () => {
    const report = await trialOf('x = []\nwhile True: x.append(bytearray(1 << 20))', ['import big'], { maxRssBytes: 256 * 1024 * 1024 });
    assert.equal(report.killed, 'memory');
    assert.match(report.failed[0]?.error ?? '', /more than 256 MiB/);
  });
});
