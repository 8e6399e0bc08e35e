// What the converter knew about the image, written into the bundle's first line (src/convert/node/bundle.ts).

export interface NodeBoxConfig {
  /** The image's node binary (process.execPath, process.argv[0]). */
  execPath: string;
  /** The entry script as Node would name it (process.argv[1]): the one script the bundle holds. */
  script: string;
  /** argv[0] values that name node (the image's command line as written, its PATH lookup, symlinks resolved). */
  nodeNames: string[];
  /** argv[0] values that name the script itself (a script run by its `#!/usr/bin/env node` line). */
  scriptNames: string[];
  /** The image's Node version ("v18.19.0"). */
  nodeVersion: string;
  /** process.arch of the image's platform ("x64", "arm64"). */
  arch: string;
  /** Debian's and NODE_PATH's global module folders, for the runtime require. */
  globalPaths: string[];
}

const key = '__boxproxyNode';
const holder = globalThis as unknown as Record<string, NodeBoxConfig | undefined>;
const found = holder[key];
delete holder[key];

export const config: NodeBoxConfig = found ?? {
  execPath: '/usr/bin/node',
  script: '',
  nodeNames: [],
  scriptNames: [],
  nodeVersion: 'v20.0.0',
  arch: 'x64',
  globalPaths: [],
};
