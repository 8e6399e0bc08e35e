// A reader for just enough of the WebAssembly binary format (core spec §5) to list a module's imports and
// exports: the magic, the section headers and the import/export sections.

export interface WasmImport {
  module: string;
  name: string;
  kind: 'func' | 'table' | 'memory' | 'global' | 'tag';
}

export interface WasmExport {
  name: string;
  kind: 'func' | 'table' | 'memory' | 'global' | 'tag';
}

export interface WasmModuleInfo {
  imports: WasmImport[];
  exports: WasmExport[];
}

export class WasmFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WasmFormatError';
  }
}

const KINDS = ['func', 'table', 'memory', 'global', 'tag'] as const;
export const WASI_PREVIEW1 = 'wasi_snapshot_preview1';

class Reader {
  pos: number;
  constructor(
    private readonly b: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }
  byte(): number {
    if (this.pos >= this.end) throw new WasmFormatError('unexpected end of module');
    return this.b[this.pos++] as number;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) break;
      shift += 7;
      if (shift > 28) throw new WasmFormatError('LEB128 value too long');
    }
    if (result > 0xffffffff) throw new WasmFormatError('LEB128 value out of range');
    return result;
  }
  /** Skips a signed or unsigned LEB128 of any length up to 64 bits. */
  skipLeb(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return;
    throw new WasmFormatError('LEB128 value too long');
  }
  name(): string {
    const len = this.u32();
    if (this.pos + len > this.end) throw new WasmFormatError('name runs past its section');
    const s = Buffer.from(this.b.buffer, this.b.byteOffset + this.pos, len).toString('utf8');
    this.pos += len;
    return s;
  }
  limits(): void {
    const flags = this.byte();
    this.skipLeb();
    if (flags & 1) this.skipLeb();
  }
}

function importDesc(r: Reader, kind: number): void {
  switch (kind) {
    case 0: // func: type index
      r.u32();
      return;
    case 1: // table: reftype + limits
      r.byte();
      r.limits();
      return;
    case 2: // memory
      r.limits();
      return;
    case 3: // global: valtype + mutability
      r.byte();
      r.byte();
      return;
    case 4: // tag: attribute + type index
      r.byte();
      r.u32();
      return;
    default:
      throw new WasmFormatError(`unknown import kind ${kind}`);
  }
}

/** Lists a core module's imports and exports; throws WasmFormatError on anything malformed. */
export function readModuleInfo(bytes: Uint8Array): WasmModuleInfo {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new WasmFormatError('not a WebAssembly binary');
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) throw new WasmFormatError('not a version 1 core module');
  const info: WasmModuleInfo = { imports: [], exports: [] };
  const top = new Reader(bytes, 8, bytes.length);
  while (top.pos < top.end) {
    const id = top.byte();
    const size = top.u32();
    const start = top.pos;
    if (start + size > bytes.length) throw new WasmFormatError(`section ${id} runs past the end of the module`);
    const r = new Reader(bytes, start, start + size);
    if (id === 2) {
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        const module = r.name();
        const name = r.name();
        const kind = r.byte();
        importDesc(r, kind);
        info.imports.push({ module, name, kind: KINDS[kind] as WasmImport['kind'] });
      }
    } else if (id === 7) {
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        const name = r.name();
        const kind = r.byte();
        r.u32();
        const k = KINDS[kind];
        if (!k) throw new WasmFormatError(`unknown export kind ${kind}`);
        info.exports.push({ name, kind: k });
      }
    }
    top.pos = start + size;
  }
  return info;
}

export type WasiCheck = { ok: true; info: WasmModuleInfo } | { ok: false; reason: string; info?: WasmModuleInfo };

/** A module Node's WASI (preview1) can run as a command: imports only wasi_snapshot_preview1, exports _start. */
export function checkWasiCommand(bytes: Uint8Array): WasiCheck {
  let info: WasmModuleInfo;
  try {
    info = readModuleInfo(bytes);
  } catch (err) {
    return { ok: false, reason: `is not a valid core module (${err instanceof Error ? err.message : String(err)})` };
  }
  const foreign = [...new Set(info.imports.filter((i) => i.module !== WASI_PREVIEW1).map((i) => i.module))];
  if (foreign.length > 0) {
    return { ok: false, reason: `imports from ${foreign.map((m) => JSON.stringify(m)).join(', ')} besides ${WASI_PREVIEW1}`, info };
  }
  if (!info.exports.some((e) => e.name === '_start' && e.kind === 'func')) {
    const reactor = info.exports.some((e) => e.name === '_initialize');
    return { ok: false, reason: reactor ? 'is a WASI reactor (exports _initialize, no _start)' : 'exports no _start function', info };
  }
  return { ok: true, info };
}
