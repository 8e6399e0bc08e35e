import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { isRepositoryName } from '../oci/names.js';

// Durations are written as numbers of seconds or strings like "30s", "5m", "1h".
const duration = z
  .union([z.number().nonnegative(), z.string().regex(/^\d+(?:\.\d+)?(?:ms|s|m|h)$/, 'expected a duration like 30s, 5m or 1h')])
  .transform((v) => (typeof v === 'number' ? v * 1000 : parseDuration(v)));

// Sizes are numbers of bytes or strings like "512MiB", "20GiB".
const size = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+(?:\.\d+)?\s*(?:B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$/, 'expected a size like 512MiB or 20GiB')])
  .transform((v) => (typeof v === 'number' ? v : parseSize(v)));

const hostName = z
  .string()
  .regex(/^[a-zA-Z0-9.-]+(?::\d{1,5})?$/, 'expected a registry host as clients write it, e.g. docker.io or 127.0.0.1:5001');

export const upstreamSchema = z
  .object({
    name: hostName,
    url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    passwordFile: z.string().min(1).optional(),
    insecure: z.boolean().default(false),
    tagTtl: duration.default(300_000), // defaults are output values (ms)
    timeout: duration.default(30_000),
    retries: z.number().int().min(0).max(10).default(2),
    connections: z.number().int().min(1).max(1024).default(64),
  })
  .strict()
  .refine((u) => !(u.password !== undefined && u.passwordFile !== undefined), {
    message: 'set password or passwordFile, not both',
    path: ['passwordFile'],
  })
  .refine((u) => u.username !== undefined || (u.password === undefined && u.passwordFile === undefined), {
    message: 'a password needs a username',
    path: ['username'],
  });

const platform = z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/, 'expected os/arch[/variant], e.g. linux/amd64');

/** Where conversions find language runtimes (src/runtimes): the local catalog, then a runtime registry. */
export const runtimesSchema = z
  .object({
    /** Catalog directory (an OCI layout). Default: $BOXPROXY_RUNTIME_CATALOG, else ~/.cache/boxproxy/runtimes/catalog. */
    catalog: z.string().min(1).optional(),
    /** Repository holding runtime artifacts tagged <name>-<major.minor>, e.g. ghcr.io/boxproxy/runtimes. */
    registry: z
      .string()
      .refine((r) => {
        const slash = r.indexOf('/');
        return slash > 0 && /^[a-zA-Z0-9.-]+(?::\d{1,5})?$/.test(r.slice(0, slash)) && isRepositoryName(r.slice(slash + 1));
      }, 'expected host[:port]/repository, e.g. ghcr.io/boxproxy/runtimes')
      .optional(),
    /** Plain http to the runtime registry (loopback hosts always use http). */
    insecure: z.boolean().default(false),
    /** auto: a runtime the catalog lacks (and no registry is set) is built once in the background; never: not. */
    build: z.enum(['auto', 'never']).default('auto'),
  })
  .strict();

export const conversionSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** augment: tag indexes get a wasip1/wasm entry; box-refs: only Box references; referrers: only referrers. */
    exposure: z.enum(['augment', 'box-refs', 'referrers']).default('augment'),
    boxNamespace: z.string().regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'expected one repository-name component').default('wasm'),
    workers: z.number().int().min(1).max(64).default(Math.max(1, availableParallelism())),
    waitMs: duration.default(250),
    boxWaitMs: duration.default(30_000),
    timeout: duration.default(600_000),
    maxHeapMb: z.number().int().min(64).default(2048),
    retryFailedAfter: duration.default(3_600_000),
    include: z.array(z.string().min(1)).default(['**']),
    exclude: z.array(z.string().min(1)).default([]),
    maxImageBytes: size.default(2 * 1024 ** 3),
    /** Writes Box layers: igzip (Debian package isal) when installed, else Node's zlib; or one of them by name. */
    gzip: z.enum(['auto', 'igzip', 'zlib']).default('auto'),
    platforms: z.array(platform).min(1).default(['linux/amd64', 'linux/arm64']),
    runtimes: runtimesSchema.default(runtimesSchema.parse({})),
  })
  .strict();

export const signingSchema = z
  .object({
    /** PKCS#8 PEM ECDSA P-256 key; created on first start when absent. Default: <storage.path>/keys/signing.pem. */
    keyPath: z.string().min(1).optional(),
    /** Older public keys (PEM files) `boxproxy verify` still accepts after a rotation. */
    trustedPublicKeys: z.array(z.string().min(1)).default([]),
  })
  .strict();

export const configSchema = z
  .object({
    listen: z
      .string()
      .regex(/^(?:\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]*):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:5000')
      .default('0.0.0.0:5000'),
    storage: z
      .object({
        path: z.string().min(1).default('./data'),
        maxBytes: size.optional(),
      })
      .strict()
      .default({ path: './data' }),
    upstreams: z.array(upstreamSchema).min(1, 'at least one upstream is needed'),
    defaultUpstream: hostName.optional(),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
    limits: z
      .object({ maxManifestBytes: size.default(4 * 1024 * 1024) })
      .strict()
      .default({ maxManifestBytes: 4 * 1024 * 1024 }),
    conversion: conversionSchema.default(conversionSchema.parse({})),
    signing: signingSchema.default(signingSchema.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.upstreams.forEach((u, i) => {
      if (names.has(u.name)) ctx.addIssue({ code: 'custom', message: `duplicate upstream name ${u.name}`, path: ['upstreams', i, 'name'] });
      names.add(u.name);
    });
    if (c.defaultUpstream !== undefined && !names.has(c.defaultUpstream)) {
      ctx.addIssue({ code: 'custom', message: `no upstream is named ${c.defaultUpstream}`, path: ['defaultUpstream'] });
    }
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;

export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s);
  if (!m) throw new Error(`bad duration ${s}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$/.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  const units: Record<string, number> = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };
  return Math.floor(Number(m[1]) * (units[m[2] as string] as number));
}
