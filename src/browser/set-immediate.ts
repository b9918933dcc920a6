// setImmediate for a Web Worker (a MessageChannel task), installed before the generation loop is loaded:
// the loop yields to the event loop between tokens (so a stop message gets through) with setImmediate where
// it exists, and setTimeout(0) would be clamped to 4 ms per token after a few nested calls.
const g = globalThis as { setImmediate?: (fn: () => void) => void };
if (typeof g.setImmediate !== "function" && typeof MessageChannel === "function") {
  const channel = new MessageChannel();
  const queue: Array<() => void> = [];
  channel.port1.onmessage = () => queue.shift()?.();
  g.setImmediate = (fn: () => void) => {
    queue.push(fn);
    channel.port2.postMessage(0);
  };
}
export {};
