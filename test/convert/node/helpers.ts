// The QuickJS-for-WASI runtime the Node tests convert with: scripts/runtimes/quickjs/build.sh (cached by its
// inputs, serialized by flock; test setup builds it first), packaged into the runtime catalog once.
import { ensureBuiltRuntime } from '../../../src/runtimes/build.js';
import type { OciRuntimeCatalog } from '../../../src/runtimes/catalog.js';

let catalog: Promise<OciRuntimeCatalog> | undefined;

/** The shared runtime catalog ($BOXPROXY_RUNTIME_CATALOG or <cache>/catalog) holding the QuickJS build. */
export function quickjsCatalog(): Promise<OciRuntimeCatalog> {
  catalog ??= ensureBuiltRuntime('quickjs');
  return catalog;
}
