import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { hexOf, isDigest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import type { RuntimeNeed } from '../convert/runtimes.js';
import type { RuntimeProgress } from '../runtimes/provision.js';

/** `waiting-runtime`: the image needs a runtime the catalog lacks, which is being obtained (built) first. */
export type ConversionState = 'pending' | 'running' | 'waiting-runtime' | 'done' | 'failed' | 'unconvertible';

/** Everything needed to serve a Box and its signatures without converting again. */
export interface BoxRecord {
  /** The Box manifest (with its artifactType/annotations as listed in referrers). */
  descriptor: Descriptor;
  strategy: string;
  /** Blobs of the Box and of its signatures (layers, config, payloads). */
  blobs: string[];
  /** The Box manifest and its signature manifests, servable by digest. */
  manifests: Array<{ digest: string; mediaType: string }>;
  signatures: {
    cosign: { tag: string; descriptor: Descriptor };
    bundle: { descriptor: Descriptor };
  };
}

/** The persisted outcome of converting one source image manifest. */
export interface ConversionRecord {
  sourceDigest: string;
  /** Where the source was first seen: upstream name and repository. */
  upstream: string;
  repository: string;
  state: ConversionState;
  converterVersion: string;
  reason?: string;
  box?: BoxRecord;
  /** The conversion report (JSON), when one was produced. */
  report?: unknown;
  /** While `waiting-runtime`: the runtime, and (live, not persisted) what obtaining it is doing. */
  waitingFor?: RuntimeNeed;
  waiting?: RuntimeProgress;
  createdAt: number;
  updatedAt: number;
  attempts: number;
}

/**
 * Conversion records, one JSON file per source digest, written by atomic
 * rename through the store's tmp dir; read once into memory at start.
 */
export class ConversionStore {
  private readonly dir: string;
  private readonly tmp: string;
  private readonly records = new Map<string, ConversionRecord>();

  constructor(root: string) {
    this.dir = join(root, 'conversions');
    this.tmp = join(root, 'tmp');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await mkdir(this.tmp, { recursive: true });
    for (const name of await readdir(this.dir)) {
      const digest = `sha256:${name.replace(/\.json$/, '')}`;
      if (!isDigest(digest)) continue;
      try {
        const rec = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as ConversionRecord;
        if (rec.sourceDigest === digest) this.records.set(digest, rec);
      } catch {
        /* a torn record is as good as none: the image converts again */
      }
    }
  }

  get(sourceDigest: string): ConversionRecord | undefined {
    return this.records.get(sourceDigest);
  }

  all(): ConversionRecord[] {
    return [...this.records.values()];
  }

  async put(rec: ConversionRecord): Promise<void> {
    this.records.set(rec.sourceDigest, rec);
    const tmp = join(this.tmp, randomUUID());
    await writeFile(tmp, JSON.stringify(rec));
    await rename(tmp, join(this.dir, `${hexOf(rec.sourceDigest)}.json`));
  }
}
