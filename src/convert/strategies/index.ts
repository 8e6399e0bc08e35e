import { native } from './native.js';
import { node } from './node.js';
import { python } from './python.js';
import { ruby } from './ruby.js';
import type { Strategy } from './types.js';
import { wasiModule } from './wasi-module.js';
import { wasmRuntimeWrapper } from './wasm-runtime-wrapper.js';

/** Tried in this order; `native` always declines with the precise reason. */
export const STRATEGIES: readonly Strategy[] = [wasiModule, wasmRuntimeWrapper, ruby, python, node, native];
