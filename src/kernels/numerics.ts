// The numbers and the rounding rule that the Wasm kernels (assembly/*.ts), their TypeScript wrappers and
// twins, and the weight quantizer (src/model/quantize.ts) must agree on. The AssemblyScript kernels import
// their copies from this very file, so a change here reaches both sides in the same build.
//
// AssemblyScript parses this file too, so keep it valid AssemblyScript: constants are plain literals with no
// type annotation and no arithmetic. AssemblyScript reads an integer literal as i32 and a literal with a
// decimal point or exponent as f64 (the kernels convert to f32 where they need it, exactly, since every value
// here is representable in f32); an expression such as 2 ** -23 would be integer arithmetic there (0).

/** Elements per quantization group along a matrix's input dimension (weights: one scale; activations: one sum). */
export const GROUP = 32;

/** torch.finfo(torch.float32).eps = 2^-23: the lower clamp on an activation row's scale (an all-zero row gets it). */
export const SCALE_MIN = 1.1920928955078125e-7;

/** Largest |q| of an int8 K/V cache value (symmetric, so -128 is never used): scale = max|x| / KV_Q_MAX. */
export const KV_Q_MAX = 127;

/** Largest |q| of an attention query quantized to i16: qScale = max|q| / QUERY_Q_MAX. */
export const QUERY_Q_MAX = 32767;

/** Keys scored per pass of the attention kernel; its scratch (attentionStateFloats) holds rows of this many scores. */
export const ATTENTION_CHUNK = 64;

/** Softmax weights e^(s - m) with s - m below this are exactly 0 (why: assembly/attention.ts, softmaxWeight4). */
export const SOFTMAX_FLOOR = -64;

/** Round half to even, as torch.round and Wasm's f32.nearest do (Math.round rounds halves up). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
