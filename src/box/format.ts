/**
 * The Box format: names shared by the converter (which writes Boxes) and the runner (which reads them).
 * Convert code may import these; keep this file free of logic and dependencies.
 *
 * A Box is an OCI image manifest whose config has os "wasip1" / architecture "wasm", Entrypoint[0] = the module's
 * path inside the rootfs, and tar(+gzip) layers unpacked in order into one rootfs preopened as "/" (runwasi).
 */

export const BOX_OS = 'wasip1';
export const BOX_ARCHITECTURE = 'wasm';
/** Platform values older Docker+Wasm images use; accepted when reading, never written. */
export const LEGACY_BOX_OS = 'wasi';
export const LEGACY_BOX_ARCHITECTURES: readonly string[] = ['wasm', 'wasm32'];

/** Config labels (config.Labels). */
export const LABEL_RUNNER = 'dev.boxproxy.runner';
export const LABEL_STRATEGY = 'dev.boxproxy.strategy';
export const LABEL_SOURCE_DIGEST = 'dev.boxproxy.source.digest';
export const LABEL_CONVERTER_VERSION = 'dev.boxproxy.converter.version';
/** The gzip implementation that wrote the layers ("igzip 2.30.0 level 1"): the layer bytes depend on it. */
export const LABEL_GZIP = 'dev.boxproxy.converter.gzip';
/** JSON array of {guest, path}: preopen the rootfs directory `path` also at `guest` (unwrapped --dir/--mapdir). */
export const LABEL_DIRS = 'dev.boxproxy.dirs';
/** e.g. "ruby@3.3" and "@ruby/3.3-wasm-wasi@2.10.1": which language runtime the module is. */
export const LABEL_RUNTIME = 'dev.boxproxy.runtime';
export const LABEL_RUNTIME_PACKAGE = 'dev.boxproxy.runtime.package';

/** Manifest annotation naming the strategy (also a label). */
export const ANNOTATION_STRATEGY = LABEL_STRATEGY;

/** How the runner starts the module (value of LABEL_RUNNER); a Box without the label is a plain WASI command. */
export const RUNNER_WASI = 'wasi';
export const RUNNER_RUBY = 'ruby.wasm';
export type BoxRunnerName = typeof RUNNER_WASI | typeof RUNNER_RUBY;
export const BOX_RUNNERS: readonly BoxRunnerName[] = [RUNNER_WASI, RUNNER_RUBY];

/** A guest directory mapping carried in LABEL_DIRS. */
export interface BoxDirMapping {
  guest: string;
  path: string;
}
