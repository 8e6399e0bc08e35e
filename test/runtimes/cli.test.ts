import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { pythonBuild } from './helpers.js';
import { run, type RunResult } from '../helpers/proc.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** `boxproxy <args>` from the sources, as a user runs it; a first CPython build may take minutes. */
function boxproxy(args: string[]): Promise<RunResult> {
  return run(process.execPath, ['--import', 'tsx', MAIN, ...args], { allowFailure: true, timeoutMs: 900_000 });
}

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'boxproxy-runtimes-cli-'));
  await pythonBuild(); // the first build of a run happens here, not inside the CLI's child
});
after(async () => rm(root, { recursive: true, force: true }));

test('boxproxy runtimes build python adds the (cached) build to the catalog; list shows it', async () => {
  const catalog = join(root, 'catalog');
  const { manifest } = await pythonBuild();
  const built = await boxproxy(['runtimes', 'build', 'python', '--catalog', catalog]);
  assert.equal(built.code, 0, built.stderr);
  const [name, version, digest] = built.stdout.trim().split('\t');
  assert.deepEqual([name, version], ['python', manifest.version]);
  assert.match(digest ?? '', /^sha256:[0-9a-f]{64}$/);
  const listed = await boxproxy(['runtimes', 'list', '--catalog', catalog]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(listed.stdout, `python\t${manifest.version}\t${digest}\n`);
  const unknown = await boxproxy(['runtimes', 'build', 'cobol', '--catalog', catalog]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown runtime cobol/);
});
