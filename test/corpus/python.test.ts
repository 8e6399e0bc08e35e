// Python images built from Debian's packages (test/corpus/recipes/python.ts), differentially: each image's
// own command run natively is the oracle, its Box must print the same and exit the same.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { corpusSkip } from './corpus.js';
import { assertRefused, assertRunsLikeNative } from './differential.js';

const skip = corpusSkip();

describe('python corpus: a Box does what the native image does', { skip }, () => {
  test('Debian python3 + jinja2/yaml/click: the C speedups fall back to pure Python, the trial says so', async () => {
    const d = await assertRunsLikeNative('python-debian');
    assert.equal(d.native.exitCode, 3);
    assert.match(d.native.stdout, /^Hello, Box! \[alpha=6\] \[b&lt;e&gt;ta=10\]$/m);
    assert.match(d.native.stdout, /^site: \['\/usr\/local\/lib\/python3\.11\/dist-packages', '\/usr\/lib\/python3\/dist-packages'\]$/m);
    const trial = d.conversion.report.trial;
    assert.deepEqual(trial?.tried, ['import sys', 'import click', 'import jinja2', 'import yaml']);
    assert.deepEqual(trial?.failed, []);
    assert.match(d.conversion.report.notes.join('\n'), /native extensions .*markupsafe, yaml/);
  });

  test('official-python layout: /usr/local/bin/python3.11 and /usr/local/lib/python3.11/site-packages', async () => {
    const d = await assertRunsLikeNative('python-official');
    assert.match(d.native.stdout, /^site: \['\/usr\/local\/lib\/python3\.11\/site-packages'\]$/m);
    // Debian's interpreter and packages were purged in the last layer: the image's layers carry whiteouts.
    assert.ok(d.conversion.report.source.layers.length >= 4);
  });

  test('virtualenv: /opt/venv first on PATH, pyvenv.cfg hides the system packages', async () => {
    const d = await assertRunsLikeNative('python-venv');
    assert.match(d.native.stdout, /^Greetings, Box, from greeter 1\.2\.0$/m);
    assert.match(d.native.stdout, /^prefix: \/opt\/venv base: \/usr$/m);
    assert.match(d.native.stdout, /^jinja2 hidden by the venv: No module named 'jinja2'$/m);
  });

  test("virtualenv console script as the command: its shebang names the venv's python", async () => {
    const d = await assertRunsLikeNative('python-venv-script');
    assert.match(d.native.stdout, /^Greetings, corpus, from greeter 1\.2\.0$/m);
  });

  test("console-script entry point: Debian's pygmentize", async () => {
    const d = await assertRunsLikeNative('python-pygmentize');
    assert.match(d.native.stdout, /<div class="highlight"><pre>/);
    // Arguments replace Cmd, like `docker run IMAGE args…`.
    const terminal = await assertRunsLikeNative('python-pygmentize', { args: ['-f', 'terminal', '-l', 'python', 'sample.py'] });
    assert.match(terminal.native.stdout, /\x1b\[/);
  });

  test('python -m package from the working directory', async () => {
    const d = await assertRunsLikeNative('python-module');
    assert.match(d.native.stdout, /^package: inventory main: __main__ path0: \/srv$/m);
    const yaml = await assertRunsLikeNative('python-module', { args: ['--format', 'yaml'] });
    assert.equal(yaml.native.exitCode, 4);
  });

  test('PYTHONPATH from the image env', async () => {
    const d = await assertRunsLikeNative('python-pythonpath');
    assert.match(d.native.stdout, /^path1: \/opt\/lib$/m);
  });

  test('a hard C dependency without a fallback (numpy) is refused with the interpreter\'s own import error', async () => {
    const d = await assertRefused('python-numpy', /^import numpy: ImportError: .*_multiarray_umath/);
    assert.match(d.native.stdout, /^\[12, 15, 18, 21\] 5\.5$/m);
    const trial = d.conversion.report.trial;
    assert.deepEqual(trial?.tried, ['import numpy']);
    assert.deepEqual(trial?.passed, []);
  });
});
