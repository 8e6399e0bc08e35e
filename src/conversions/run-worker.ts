import { Worker } from 'node:worker_threads';
import type { WorkerRequest, WorkerResult } from './worker-protocol.js';

// Compiled, the worker is worker.js beside this file; from sources (tests,
// tsx) it is worker.ts and needs tsx's loader in the worker too.
const fromSources = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url);

export interface WorkerLimits {
  timeoutMs: number;
  /** V8 old-generation cap for the worker, in MiB. */
  maxHeapMb: number;
}

/** Runs one conversion in a fresh worker; a crash, an OOM or a timeout becomes an 'error' result. */
export function runConversionWorker(req: WorkerRequest, limits: WorkerLimits, signal?: AbortSignal): Promise<WorkerResult> {
  return new Promise((resolve) => {
    const options = { workerData: req, resourceLimits: { maxOldGenerationSizeMb: limits.maxHeapMb } };
    // Node 20 workers do not inherit --import loaders: register tsx inside the worker first.
    const worker = fromSources
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(WORKER_URL.href)}); });`,
          { ...options, eval: true },
        )
      : new Worker(WORKER_URL, options);
    let settled = false;
    const settle = (r: WorkerResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
      void worker.terminate();
    };
    const timer = setTimeout(() => settle({ kind: 'error', message: `conversion timed out after ${limits.timeoutMs} ms` }), limits.timeoutMs);
    signal?.addEventListener('abort', () => settle({ kind: 'error', message: 'conversion stopped: the server is shutting down' }), { once: true });
    worker.once('message', (msg: WorkerResult) => settle(msg));
    worker.once('error', (err) => settle({ kind: 'error', message: `conversion worker crashed: ${err.message}` }));
    worker.once('exit', (code) => settle({ kind: 'error', message: `conversion worker exited with code ${code}` }));
  });
}
