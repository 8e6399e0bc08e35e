// Builds the Wasm language runtimes the tests convert with (cached by their inputs: instant when warm) and
// packages them into the runtime catalog ($BOXPROXY_RUNTIME_CATALOG or ~/.cache/boxproxy/runtimes/catalog).
import { ensureBuiltRuntime, RUNTIME_NAMES } from '../../src/runtimes/build.js';

for (const name of RUNTIME_NAMES) {
  const started = Date.now();
  await ensureBuiltRuntime(name, { onLog: (line) => process.stderr.write(`setup: ${name}: ${line}\n`) });
  process.stderr.write(`setup: runtime ${name} ready (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}
