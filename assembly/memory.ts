// The module never allocates: TypeScript owns every byte above the static data through a bump arena
// (src/kernels/wasm.ts). This tells it where the static data ends.
export function heap_base(): usize {
  return __heap_base;
}
