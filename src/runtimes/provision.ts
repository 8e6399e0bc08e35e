// Obtaining a runtime the catalog lacks, for the proxy: built once in the background from Debian's sources
// (scripts/runtimes/<name>/build.sh), however many conversions wait for it. A runtime registry, when configured,
// is the source instead: conversion workers pull from it themselves (src/runtimes/catalog.ts), so a runtime it
// lacks is not built behind the operator's back.
import type { RuntimeNeed } from '../convert/runtimes.js';
import type { Logger } from '../ops/log.js';
import { SingleFlight } from '../util/singleflight.js';
import { ensureBuiltRuntime, RUNTIME_BUILDS, type RuntimeBuildSpec } from './build.js';
import { defaultCatalogDir } from './dirs.js';
import { pickNearest } from './versions.js';

/** What a conversion waiting for a runtime is waiting on (the status API shows it). */
export interface RuntimeProgress {
  /** "python 3.11" */
  runtime: string;
  action: 'building';
  /** The build's latest log line. */
  detail: string;
  /** Epoch milliseconds the build started. */
  since: number;
}

export interface ProvisionerOptions {
  /** The catalog the conversions read; the build lands there. */
  catalogDir?: string;
  /** Build cache (default $BOXPROXY_RUNTIME_CACHE or ~/.cache/boxproxy/runtimes). */
  cacheDir?: string;
  /** `auto`: build a missing runtime; `never`: fail the conversion with the command that builds it. */
  build: 'auto' | 'never';
  /** The runtime registry conversions pull from, when configured (then nothing is built). */
  registry?: string;
  /** The builds this machine knows (default RUNTIME_BUILDS); tests substitute scripts through `script`. */
  builds?: readonly RuntimeBuildSpec[];
  script?: string;
  logger: Logger;
}

/** The runtime cannot be had here; the message says why and names the command that would get it. */
export class RuntimeUnavailableError extends Error {
  override name = 'RuntimeUnavailableError';
}

export class RuntimeProvisioner {
  private readonly flights = new SingleFlight<void>();
  private readonly progress = new Map<string, RuntimeProgress>();
  private readonly builds: readonly RuntimeBuildSpec[];
  private readonly catalogDir: string;

  constructor(private readonly opts: ProvisionerOptions) {
    this.builds = opts.builds ?? RUNTIME_BUILDS;
    this.catalogDir = opts.catalogDir ?? defaultCatalogDir();
  }

  /** The build that provides `need`: same runtime, nearest major.minor. */
  buildFor(need: RuntimeNeed): RuntimeBuildSpec | undefined {
    return pickNearest(
      this.builds.filter((b) => b.name === need.name),
      (b) => b.version,
      need.version,
    );
  }

  /** What obtaining `need` is doing now, while it runs. */
  status(need: RuntimeNeed): RuntimeProgress | undefined {
    const build = this.buildFor(need);
    return build ? this.progress.get(build.script) : undefined;
  }

  /**
   * Resolves once the catalog holds a runtime for `need` (built now, or found in the build cache); concurrent
   * callers share one build. Throws RuntimeUnavailableError naming the command to run when it cannot be had.
   */
  obtain(need: RuntimeNeed): Promise<void> {
    const build = this.buildFor(need);
    const wanted = `${need.name} ${need.version || '(any version)'}`;
    if (!build) {
      const known = this.builds.map((b) => `${b.name} ${b.version}`).join(', ') || 'none';
      return Promise.reject(new RuntimeUnavailableError(`no runtime for ${wanted} is in the catalog and none can be built here (buildable: ${known})`));
    }
    const command = this.command(build);
    if (this.opts.registry !== undefined) {
      return Promise.reject(
        new RuntimeUnavailableError(
          `the runtime registry ${this.opts.registry} has no ${build.name}-${build.version} and the catalog lacks it; publish one: ${command} && boxproxy runtimes push ${build.name} ${build.version} ${this.opts.registry} --catalog ${this.catalogDir}`,
        ),
      );
    }
    if (this.opts.build === 'never') {
      return Promise.reject(new RuntimeUnavailableError(`${build.title} is not in the runtime catalog and conversion.runtimes.build is never; build it: ${command}`));
    }
    return this.flights.do(build.script, () => this.run(build, command));
  }

  private async run(build: RuntimeBuildSpec, command: string): Promise<void> {
    const log = this.opts.logger.child({ runtime: `${build.name} ${build.version}` });
    const progress: RuntimeProgress = { runtime: `${build.name} ${build.version}`, action: 'building', detail: 'starting the build', since: Date.now() };
    this.progress.set(build.script, progress);
    log.info({ catalog: this.catalogDir }, `${build.title} is not in the runtime catalog: building it from Debian's sources (minutes on a new machine)`);
    try {
      await ensureBuiltRuntime(build.script, {
        catalogDir: this.catalogDir,
        ...(this.opts.cacheDir !== undefined ? { cacheDir: this.opts.cacheDir } : {}),
        ...(this.opts.script !== undefined ? { script: this.opts.script } : {}),
        onLog: (line) => {
          progress.detail = line;
          // The script's own progress lines at info; the tools' chatter (configure, apt) at debug.
          if (line.startsWith('build.sh:')) log.info(line);
          else log.debug(line);
        },
      });
      log.info({ seconds: Math.round((Date.now() - progress.since) / 1000) }, `${build.title} is in the runtime catalog`);
    } catch (err) {
      log.warn({ err: (err as Error).message }, `building ${build.title} failed`);
      throw new RuntimeUnavailableError(`${build.title} is not in the runtime catalog and building it here failed: ${(err as Error).message.trim()}\nBuild it as root: ${command}`);
    } finally {
      this.progress.delete(build.script);
    }
  }

  /** The command that builds `build` into this catalog, as this process was started (a checkout or a package). */
  private command(build: RuntimeBuildSpec): string {
    const cli = process.argv[1]?.endsWith('main.js') ? `node ${process.argv[1]}` : 'boxproxy';
    return `${cli} runtimes build ${build.script} --catalog ${this.catalogDir}`;
  }
}
