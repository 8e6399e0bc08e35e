import { mkdir, readFile, rename, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { hexOf } from '../oci/digest.js';
import { StorePaths } from './paths.js';

/** What a tag pointed to when last fetched or revalidated. */
export interface TagRecord {
  digest: string;
  mediaType: string;
  /** Epoch ms of the last upstream confirmation. */
  checkedAt: number;
}

/** A cached listing (tags list, referrers) with its fetch time. */
export interface ListRecord<T> {
  value: T;
  checkedAt: number;
}

/**
 * Per-repository records: tags, which manifests and blobs a repository is
 * known to hold, and cached listings. Small JSON/marker files written by
 * atomic rename, fronted by an in-memory LRU so the warm path does no I/O.
 */
export class RecordStore {
  private readonly paths: StorePaths;
  private readonly hot = new LRUCache<string, TagRecord | string | true>({ max: 50_000 });

  constructor(root: string) {
    this.paths = new StorePaths(root);
  }

  async getTag(upstream: string, repo: string, tag: string): Promise<TagRecord | undefined> {
    const key = `t\0${upstream}\0${repo}\0${tag}`;
    const hit = this.hot.get(key);
    if (hit !== undefined) return hit as TagRecord;
    const rec = await this.readJson<TagRecord>(join(this.paths.repo(upstream, repo), '_tags', tag));
    if (rec) this.hot.set(key, rec);
    return rec;
  }

  async putTag(upstream: string, repo: string, tag: string, rec: TagRecord): Promise<void> {
    this.hot.set(`t\0${upstream}\0${repo}\0${tag}`, rec);
    await this.writeAtomic(join(this.paths.repo(upstream, repo), '_tags'), tag, JSON.stringify(rec));
  }

  /** Media type of a manifest known to be in the repository, or undefined. */
  async getManifestLink(upstream: string, repo: string, digest: string): Promise<string | undefined> {
    const key = `m\0${upstream}\0${repo}\0${digest}`;
    const hit = this.hot.get(key);
    if (hit !== undefined) return hit as string;
    try {
      const mediaType = await readFile(join(this.paths.repo(upstream, repo), '_manifests', hexOf(digest)), 'utf8');
      this.hot.set(key, mediaType);
      return mediaType;
    } catch {
      return undefined;
    }
  }

  async putManifestLink(upstream: string, repo: string, digest: string, mediaType: string): Promise<void> {
    this.hot.set(`m\0${upstream}\0${repo}\0${digest}`, mediaType);
    await this.writeAtomic(join(this.paths.repo(upstream, repo), '_manifests'), hexOf(digest), mediaType);
  }

  async hasBlobLink(upstream: string, repo: string, digest: string): Promise<boolean> {
    const key = `b\0${upstream}\0${repo}\0${digest}`;
    if (this.hot.has(key)) return true;
    try {
      await access(join(this.paths.repo(upstream, repo), '_blobs', hexOf(digest)));
      this.hot.set(key, true);
      return true;
    } catch {
      return false;
    }
  }

  async putBlobLink(upstream: string, repo: string, digest: string): Promise<void> {
    const key = `b\0${upstream}\0${repo}\0${digest}`;
    if (this.hot.has(key)) return;
    this.hot.set(key, true);
    await this.writeAtomic(join(this.paths.repo(upstream, repo), '_blobs'), hexOf(digest), '');
  }

  getList<T>(upstream: string, repo: string, name: string): Promise<ListRecord<T> | undefined> {
    return this.readJson<ListRecord<T>>(join(this.paths.repo(upstream, repo), '_lists', `${name}.json`));
  }

  async putList<T>(upstream: string, repo: string, name: string, value: T, checkedAt: number): Promise<void> {
    await this.writeAtomic(join(this.paths.repo(upstream, repo), '_lists'), `${name}.json`, JSON.stringify({ value, checkedAt }));
  }

  private async readJson<T>(path: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as T;
    } catch {
      // Missing or torn records read as absent: the caller refetches.
      return undefined;
    }
  }

  private async writeAtomic(dir: string, name: string, data: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    // Temp files live in the store's tmp dir, which start-up empties.
    const tmp = join(this.paths.tmpDir, randomUUID());
    await writeFile(tmp, data);
    await rename(tmp, join(dir, name));
  }
}
