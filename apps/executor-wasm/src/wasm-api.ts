/**
 * The slice of the WebAssembly JavaScript API this app uses, typed here because the project's
 * `lib` (ES2022, no DOM) declares no `WebAssembly` global.
 */
export interface CompiledModule {
  /** A `WebAssembly.Module`: opaque here, structured-cloned to the worker thread. */
  readonly __compiledModule?: never;
}

interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<CompiledModule>;
}

export const webAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
