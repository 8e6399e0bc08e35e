import type { ConversionReport } from '../convert/report.js';
import type { RuntimeNeed } from '../convert/runtimes.js';
import type { GzipSpec } from '../convert/gzip/index.js';
import type { RuntimeSourceOptions } from '../runtimes/catalog.js';

/** What the server hands a conversion worker (structured-clone safe). */
export interface WorkerRequest {
  storageRoot: string;
  workDir: string;
  sourceName: string;
  manifest: { digest: string; mediaType: string; bytes: Uint8Array };
  limits?: { maxEntries?: number; maxBytes?: number; maxFileBytes?: number; maxRatio?: number };
  /** Runtime catalog directory and registry (config conversion.runtimes); default catalog, no registry when absent. */
  runtimes?: RuntimeSourceOptions;
  /** The gzip that writes the Box's layers, resolved once at start-up (config conversion.gzip); default auto. */
  gzip?: GzipSpec;
}

export type WorkerResult =
  | {
      kind: 'box';
      manifest: { digest: string; mediaType: string; bytes: Uint8Array };
      config: { digest: string; bytes: Uint8Array };
      /** Layer blobs written in the work dir. */
      layers: Array<{ digest: string; path: string }>;
      report: ConversionReport;
    }
  | { kind: 'unconvertible'; reason: string; report: ConversionReport; needs?: RuntimeNeed }
  | { kind: 'error'; message: string };
