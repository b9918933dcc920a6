// A disk that fills up mid-download, for the model cache's test (test/e2e/model-cache.test.ts): every
// synchronous OPFS write of this realm past `limit` bytes in total throws QuotaExceededError.
export function quotaRunsOutAfter(limit: number): void {
  type Write = (buffer: Uint8Array, options: { at: number }) => number;
  const proto = (globalThis as unknown as { FileSystemSyncAccessHandle: { prototype: { write: Write } } }).FileSystemSyncAccessHandle.prototype;
  const write = proto.write;
  let written = 0;
  proto.write = function (this: unknown, buffer, options) {
    written += buffer.byteLength;
    if (written > limit) throw new DOMException("the origin's quota ran out (simulated)", "QuotaExceededError");
    return write.call(this, buffer, options);
  };
}
