// What the converter needs from a runtime catalog (implemented in src/runtimes): typed runtimes by version.

export interface RubyRuntime {
  /** major.minor of the Ruby inside the module, e.g. "3.4". */
  version: string;
  /** ruby+stdlib.wasm on this machine. */
  wasmPath: string;
  /** e.g. "@ruby/3.4-wasm-wasi@2.7.2" (recorded in the Box so a run is traceable). */
  package?: string;
}

export interface PythonRuntime {
  /** Full version of the CPython inside the module, e.g. "3.11.2". */
  version: string;
  /** python.wasm (a WASI preview1 command) on this machine. */
  wasmPath: string;
  /** The stdlib directory on this machine (lib/pythonX.Y, with lib-dynload/ holding sysconfigdata). */
  stdlibDir: string;
  /** e.g. "python@3.11.2 sha256:…" (the catalog artifact, recorded in the Box so a run is traceable). */
  artifact?: string;
}

export interface QuickJsRuntime {
  /** Version of the QuickJS inside the module, e.g. "2025.04.26". */
  version: string;
  /** qjs.wasm (a WASI preview1 command) on this machine. */
  wasmPath: string;
  /** e.g. "quickjs@2025.04.26 sha256:…" (the catalog artifact, recorded in the Box so a run is traceable). */
  artifact?: string;
}

export interface RuntimeCatalog {
  /** The installed ruby.wasm nearest to `version` ("3.3.5", "3.1", or "" for the newest). */
  ruby(version: string): Promise<RubyRuntime | undefined>;
  /** The CPython-for-WASI runtime nearest to `version` ("3.11.9", "3.12", or "" for the newest); see src/runtimes. */
  python?(version: string): Promise<PythonRuntime | undefined>;
  /** QuickJS for WASI, the engine of Node Boxes (there is one version: "" asks for it); see src/runtimes. */
  quickjs?(version: string): Promise<QuickJsRuntime | undefined>;
}

/**
 * A runtime a strategy needed and the catalog did not have: the conversion waits for it to be obtained (pulled
 * or built, src/runtimes/provision.ts) and runs again, instead of refusing an image that has a Wasm route.
 */
export interface RuntimeNeed {
  /** Catalog name: "python", "ruby". */
  name: string;
  /** The version the image has ("3.11.2"), or "" when unknown. */
  version: string;
}
