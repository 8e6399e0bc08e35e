// `boxproxy convert <ref|oci-layout> -o <dir>`: converts an image into a Box written as an OCI image layout.
import { ImageError } from '../../image/errors.js';
import { Command, Option } from 'commander';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pickGzip, type GzipCodec, type GzipPreference } from '../../convert/gzip/index.js';
import { convertImage, writeBoxToOciLayout, type ProgressEvent } from '../../convert/pipeline.js';
import { OciRuntimeCatalog } from '../../runtimes/catalog.js';
import { UpstreamError } from '../../upstream/types.js';
import { ImageRefError, openImage } from './image-ref.js';

/** Exit statuses: a Box was written / the image has no Wasm route (the report says why) / something failed. */
export const EXIT_CONVERTED = 0;
export const EXIT_ERROR = 1;
export const EXIT_UNCONVERTIBLE = 3;

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/** One status line redrawn in place on a terminal (stderr, so stdout stays the report). */
function progressLine(stream: NodeJS.WriteStream): { update(e: ProgressEvent): void; done(): void } {
  let last = 0;
  let shown = false;
  return {
    update(e: ProgressEvent) {
      const now = Date.now();
      // Stage changes always show; byte updates at most ten times a second.
      if (e.stage === 'flatten' && e.bytes !== undefined && now - last < 100) return;
      last = now;
      let text: string = e.stage;
      if (e.stage === 'flatten' && e.layers !== undefined && e.layer !== undefined) {
        const total = e.totalBytes ?? 0;
        const ratio = total > 0 ? Math.min(1, (e.bytes ?? 0) / total) : 0;
        const width = 24;
        const filled = Math.round(ratio * width);
        text = `flatten [${'#'.repeat(filled)}${' '.repeat(width - filled)}] layer ${e.layer + 1}/${e.layers} ${mib(e.bytes ?? 0)}/${mib(total)} MiB`;
      } else if (e.message) {
        text = `${e.stage} ${e.message}`;
      }
      const columns = stream.columns || 80;
      stream.write(`\r${text.slice(0, columns - 1).padEnd(Math.min(columns - 1, 79))}`);
      shown = true;
    },
    done() {
      if (shown) stream.write('\r\x1b[K');
    },
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface ConvertOptions {
  output: string;
  tag?: string;
  platform: string[];
  insecure?: boolean;
  runtimeRegistry?: string;
  report?: string;
  workDir?: string;
  gzip: GzipPreference;
}

export function convertCommand(): Command {
  return new Command('convert')
    .description('convert a container image (registry reference or OCI layout directory) into a Wasm Box')
    .argument('<image>', 'registry reference (host/repo:tag) or OCI image layout directory ([oci:]dir[:tag])')
    .requiredOption('-o, --output <dir>', 'OCI image layout directory to write the Box into')
    .option('-t, --tag <tag>', "tag of the Box in the output layout (default: the source's tag, else latest)")
    .option('--platform <os/arch>', 'platform preference for a multi-platform image (repeatable)', collect, [])
    .option('--insecure', 'reach the registry (and the runtime registry) over plain http')
    .option('--runtime-registry <host/repo>', 'pull runtimes the catalog lacks from this repository (tags <name>-<major.minor>)')
    .option('--report <file>', 'also write the report JSON to this file')
    .addOption(new Option('--gzip <impl>', 'gzip that writes the Box layers: igzip (Debian package isal) when installed, or one by name').choices(['auto', 'igzip', 'zlib']).default('auto'))
    .addOption(new Option('--work-dir <dir>', 'scratch directory (default: a new one under the system temp dir)'))
    .action(async (image: string, opts: ConvertOptions) => {
      process.exitCode = await runConvert(image, opts);
    });
}

async function runConvert(
  image: string,
  opts: ConvertOptions,
): Promise<number> {
  let opened;
  try {
    opened = await openImage(image, { insecure: opts.insecure });
  } catch (err) {
    if (err instanceof ImageRefError) {
      process.stderr.write(`boxproxy: ${err.message}\n`);
      return EXIT_ERROR;
    }
    throw err;
  }
  let gzip: GzipCodec;
  try {
    gzip = await pickGzip(opts.gzip);
  } catch (err) {
    process.stderr.write(`boxproxy: ${(err as Error).message}\n`);
    await opened.close();
    return EXIT_ERROR;
  }
  const workDir = opts.workDir ?? (await mkdtemp(join(tmpdir(), 'boxproxy-convert-')));
  const progress = process.stderr.isTTY ? progressLine(process.stderr) : undefined;
  try {
    const result = await convertImage(opened.source, opened.reference, {
      workDir,
      gzip,
      runtimes: new OciRuntimeCatalog(opts.runtimeRegistry ? { registry: opts.runtimeRegistry, insecure: Boolean(opts.insecure) } : {}),
      ...(opts.platform.length > 0 ? { platforms: opts.platform } : {}),
      ...(progress ? { onProgress: (e: ProgressEvent) => progress.update(e) } : {}),
    });
    progress?.done();
    const reportJson = JSON.stringify(result.report, null, 2) + '\n';
    process.stdout.write(reportJson);
    if (opts.report) await writeFile(opts.report, reportJson);
    if (result.kind === 'unconvertible') {
      process.stderr.write(`boxproxy: ${image} cannot be converted: ${result.reason}\n`);
      return EXIT_UNCONVERTIBLE;
    }
    await writeBoxToOciLayout(result.box, opts.output, opts.tag ?? opened.tag);
    process.stderr.write(`boxproxy: wrote Box ${result.box.manifest.digest} to ${opts.output}\n`);
    return EXIT_CONVERTED;
  } catch (err) {
    progress?.done();
    if (err instanceof ImageError || err instanceof UpstreamError) {
      process.stderr.write(`boxproxy: ${err.message}\n`);
      return EXIT_ERROR;
    }
    throw err;
  } finally {
    await opened.close();
    if (!opts.workDir) await rm(workDir, { recursive: true, force: true });
  }
}
