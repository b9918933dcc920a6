// Which browser store should keep a multi-GB model across visits: the Origin Private File System or the
// Cache API? Writes SIZE MiB into each, from a ReadableStream of 4 MiB chunks (as a download arrives), then
// reads it back in 4 MiB slices in a new page, in headless Chromium with a real (on-disk) profile. Prints
// write and read throughput, time to the first 4 MiB slice, and the peak resident memory of the browser's
// processes above the idle figure (sampled every 50 ms from /proc).
//
//   npx tsx bench/browser-storage.ts [MiB=512] [rounds=2]
//
// Needs /usr/bin/chromium. The figures in src/browser/model-cache.ts come from this script.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const MIB = 1 << 20;
const SIZE_MIB = Number(process.argv[2] ?? 512);
const ROUNDS = Number(process.argv[3] ?? 2);

const PAGE = `<!doctype html><meta charset=utf-8><script>
const MIB = 1 << 20, CHUNK = 4 * MIB;
function chunks(total) {
  const buf = new Uint8Array(CHUNK);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 24;
  let sent = 0;
  return new ReadableStream({
    pull(c) {
      if (sent >= total) return c.close();
      const n = Math.min(CHUNK, total - sent);
      const b = buf.slice(0, n); b[0] = sent / CHUNK; sent += n; c.enqueue(b);
    },
  }, { highWaterMark: 0 });
}
async function opfsDir() { return (await navigator.storage.getDirectory()).getDirectoryHandle("bench", { create: true }); }
window.write = async (store, total) => {
  const t0 = performance.now();
  if (store === "opfs") {
    const h = await (await opfsDir()).getFileHandle("blob", { create: true });
    const w = await h.createWritable();
    await chunks(total).pipeTo(w);
  } else {
    const cache = await caches.open("bench");
    await cache.put("/blob", new Response(chunks(total), { headers: { "content-length": String(total) } }));
  }
  return performance.now() - t0;
};
window.read = async (store) => {
  const t0 = performance.now();
  const blob = store === "opfs"
    ? await (await (await opfsDir()).getFileHandle("blob")).getFile()
    : await (await (await caches.open("bench")).match("/blob")).blob();
  let first = 0, sum = 0;
  if (window.STREAM) {
    const r = blob.stream().getReader();
    for (;;) { const { done, value } = await r.read(); if (done) break; if (!first) first = performance.now() - t0; sum += value[0]; }
    return { first, ms: performance.now() - t0, size: blob.size, sum };
  }
  for (let off = 0; off < blob.size; off += CHUNK) {
    const b = new Uint8Array(await blob.slice(off, off + CHUNK).arrayBuffer());
    sum += b[0];
    if (off === 0) first = performance.now() - t0;
  }
  return { first, ms: performance.now() - t0, size: blob.size, sum };
};
// The same, from a dedicated worker with a synchronous access handle (OPFS's fast path, workers only).
const WORKER = URL.createObjectURL(new Blob([\`
  onmessage = async (e) => {
    const { op, total } = e.data, CHUNK = 4 << 20;
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("bench", { create: true });
    const h = await dir.getFileHandle("sync", { create: true });
    const t0 = performance.now();
    const a = await h.createSyncAccessHandle();
    const buf = new Uint8Array(CHUNK);
    let first = 0, size = 0;
    if (op === "write") {
      a.truncate(0);
      for (let off = 0; off < total; off += CHUNK) { buf[0] = off / CHUNK; a.write(buf.subarray(0, Math.min(CHUNK, total - off)), { at: off }); }
      a.flush();
    } else {
      size = a.getSize();
      for (let off = 0; off < size; off += CHUNK) { a.read(buf, { at: off }); if (off === 0) first = performance.now() - t0; }
    }
    a.close();
    postMessage({ ms: performance.now() - t0, first, size });
  };\`], { type: "text/javascript" }));
window.sync = (op, total) => new Promise((ok) => { const w = new Worker(WORKER); w.onmessage = (e) => { w.terminate(); ok(e.data); }; w.postMessage({ op, total }); });
window.clear = async () => {
  await (await navigator.storage.getDirectory()).removeEntry("bench", { recursive: true }).catch(() => {});
  await caches.delete("bench");
};
</script>`;

function rssOf(marker: string): number {
  let kb = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)) continue;
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // the process ended while being read
    }
  }
  return kb * 1024;
}

async function sampled<T>(marker: string, f: () => Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = rssOf(marker);
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(marker))), 50);
  try {
    const value = await f();
    return { value, peak: Math.max(peak, rssOf(marker)) };
  } finally {
    clearInterval(timer);
  }
}

const server = createServer((_req, res) => {
  res.setHeader("content-type", "text/html");
  res.end(PAGE);
});
await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
const profile = mkdtempSync(join(tmpdir(), "mobilellm-storage-bench-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const total = SIZE_MIB * MIB;
const mbps = (bytes: number, ms: number) => ((bytes / 1e6) / (ms / 1000)).toFixed(0);
console.log(`${SIZE_MIB} MiB in 4 MiB chunks, headless Chromium ${context.browser()?.version() ?? ""}, profile on disk`);
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const store of ["opfs", "cache", "opfs-sync"] as const) {
      let page = await context.newPage();
      await page.goto(url);
      await page.evaluate(() => (window as unknown as { clear(): Promise<void> }).clear());
      const idle = rssOf(profile);
      type Win = { write(s: string, t: number): Promise<number>; read(s: string): Promise<{ first: number; ms: number; size: number }>; sync(op: string, t: number): Promise<{ first: number; ms: number; size: number }> };
      const w = await sampled(profile, () =>
        page.evaluate(([s, t]) => (s === "opfs-sync" ? (window as unknown as Win).sync("write", t as number).then((r) => r.ms) : (window as unknown as Win).write(s as string, t as number)), [store, total] as const),
      );
      await page.close();
      page = await context.newPage(); // a new visit reads what the last one wrote
      await page.goto(url);
      if (process.env.STREAM) await page.evaluate(() => ((window as unknown as { STREAM: boolean }).STREAM = true));
      const idle2 = rssOf(profile);
      const r = await sampled(profile, () => page.evaluate((s) => (s === "opfs-sync" ? (window as unknown as Win).sync("read", 0) : (window as unknown as Win).read(s)), store));
      if (r.value.size !== total) throw new Error(`${store}: read back ${r.value.size} of ${total} bytes`);
      console.log(
        `round ${round} ${store.padEnd(9)}  write ${mbps(total, w.value).padStart(5)} MB/s (peak +${((w.peak - idle) / MIB).toFixed(0)} MiB)` +
          `  read ${mbps(total, r.value.ms).padStart(5)} MB/s, first 4 MiB after ${r.value.first.toFixed(1)} ms (peak +${((r.peak - idle2) / MIB).toFixed(0)} MiB)`,
      );
      await page.evaluate(() => (window as unknown as { clear(): Promise<void> }).clear());
      await page.close();
    }
  }
} finally {
  await context.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
