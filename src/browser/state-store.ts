// Sequence states (src/model/kv-state.ts) kept in the Origin Private File System, so a prompt prefilled
// once (a long system prompt, a conversation) is restored after a page reload instead of prefilled again.
// A state is checked when it is restored (a file another model or an older build left is refused with
// one line), so this store only reads and writes bytes.

/** The OPFS folder states live in unless the caller names another. */
export const STATE_DIRECTORY = "mobilellm-states";
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

function checkName(name: string): void {
  if (typeof name !== "string" || !NAME.test(name)) throw new RangeError(`a state name is letters, digits, '.', '_' and '-' (at most 128), got ${JSON.stringify(name)}`);
}

async function folder(directory: string): Promise<FileSystemDirectoryHandle> {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: () => Promise<FileSystemDirectoryHandle> } } }).navigator?.storage;
  if (typeof storage?.getDirectory !== "function") throw new Error("this browser has no Origin Private File System to keep states in");
  return (await storage.getDirectory()).getDirectoryHandle(directory, { create: true });
}

/** Writes `bytes` as state `name` (replacing it). */
export async function writeState(name: string, bytes: Uint8Array, directory = STATE_DIRECTORY): Promise<void> {
  checkName(name);
  const file = await (await folder(directory)).getFileHandle(name, { create: true });
  const w = await file.createWritable();
  try {
    await w.write(bytes as Uint8Array<ArrayBuffer>);
    await w.close();
  } catch (err) {
    await w.abort().catch(() => undefined);
    throw err;
  }
}

/** The bytes of state `name`, or an error naming it when there is none. */
export async function readState(name: string, directory = STATE_DIRECTORY): Promise<Uint8Array> {
  checkName(name);
  let handle: FileSystemFileHandle;
  try {
    handle = await (await folder(directory)).getFileHandle(name);
  } catch {
    throw new Error(`no saved state ${JSON.stringify(name)}`);
  }
  return new Uint8Array(await (await handle.getFile()).arrayBuffer());
}
