// The tools test/setup/tools.sh installed are the pinned versions of test/setup/tools.txt, and run.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { run } from '../helpers/proc.js';
import { python, skipUnlessTestTools, toolBin, toolSpecs, wasmtimePythonPath, type ToolName } from '../helpers/tools.js';

/** How each tool reports its own version, and the line that carries it. */
const VERSION_COMMANDS: Record<ToolName, { args: string[]; line: RegExp }> = {
  oras: { args: ['version'], line: /^Version:\s+(\S+)$/m },
  cosign: { args: ['version'], line: /^GitVersion:\s+(\S+)$/m },
  crane: { args: ['version'], line: /^(\S+)$/m },
  wazero: { args: ['version'], line: /^(\S+)$/m },
  distribution: { args: ['--version'], line: / (v\d+\.\d+\.\d+)/ },
  wasmtime: { args: [], line: /^(\S+)$/m },
};

const testTools = toolSpecs().filter((s) => s.purpose === 'test');

describe('the pinned tools', { skip: skipUnlessTestTools(...testTools.map((s) => s.name)) }, () => {
  test('tools.txt lists oras, cosign, crane, wazero and wasmtime for the tests, distribution for the benchmark', () => {
    assert.deepEqual(testTools.map((s) => s.name).sort(), ['cosign', 'crane', 'oras', 'wasmtime', 'wazero']);
    assert.deepEqual(toolSpecs().filter((s) => s.purpose === 'bench').map((s) => s.name), ['distribution']);
  });

  for (const spec of testTools) {
    test(`${spec.name} is ${spec.version}`, async () => {
      const { args, line } = VERSION_COMMANDS[spec.name];
      const r =
        spec.name === 'wasmtime'
          ? await run(python(), ['-c', 'import importlib.metadata as m, wasmtime; print(m.version("wasmtime"))'], { env: { ...process.env, PYTHONPATH: wasmtimePythonPath() } })
          : await run(toolBin(spec.name), args);
      const found = line.exec(`${r.stdout}${r.stderr}`)?.[1];
      assert.equal(found?.replace(/^v/, ''), spec.version.replace(/^v/, ''), `${spec.name} reports ${r.stdout}${r.stderr}`);
    });
  }
});
