// Runs one conversion in a worker thread, so a crash, a runaway image or a
// CPU-heavy flatten never blocks or kills the thread serving pulls.
import { parentPort, workerData } from 'node:worker_threads';
import { gzipCodec, pickGzip } from '../convert/gzip/index.js';
import { convertImage } from '../convert/pipeline.js';
import { OciRuntimeCatalog } from '../runtimes/catalog.js';
import type { FlattenLimits } from '../convert/flatten.js';
import { StoreImageSource } from './store-source.js';
import type { WorkerRequest, WorkerResult } from './worker-protocol.js';

async function run(req: WorkerRequest): Promise<WorkerResult> {
  const manifest = { digest: req.manifest.digest, mediaType: req.manifest.mediaType, bytes: Buffer.from(req.manifest.bytes) };
  const source = new StoreImageSource(req.storageRoot, manifest, req.sourceName);
  const limits: Partial<FlattenLimits> | undefined = req.limits;
  const result = await convertImage(source, manifest.digest, {
    workDir: req.workDir,
    runtimes: OciRuntimeCatalog.fromOptions(req.runtimes),
    gzip: req.gzip ? gzipCodec(req.gzip) : await pickGzip('auto'),
    ...(limits ? { limits } : {}),
  });
  if (result.kind === 'unconvertible') return result;
  const { box } = result;
  return {
    kind: 'box',
    manifest: { digest: box.manifest.digest, mediaType: box.manifest.mediaType, bytes: new Uint8Array(box.manifest.bytes) },
    config: { digest: box.config.digest, bytes: new Uint8Array(box.config.bytes) },
    layers: box.layers.map((l) => ({ digest: l.descriptor.digest, path: l.path })),
    report: result.report,
  };
}

run(workerData as WorkerRequest).then(
  (result) => parentPort?.postMessage(result),
  (err: unknown) => parentPort?.postMessage({ kind: 'error', message: (err as Error).message ?? String(err) } satisfies WorkerResult),
);
