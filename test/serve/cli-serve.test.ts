// `mobilellm serve` as a user runs it: one line when it listens, loopback by default, and SIGTERM / SIGINT
// end it with exit code 0 once the running request has finished.
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import OpenAI from "openai";
import { CLI } from "../helpers/cli.js";

/** Starts the server; resolves with the child and its URL once it printed its line. */
function startServe(args: string[]): Promise<{ child: ReturnType<typeof spawn>; url: string; stderr: () => string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "--ctx", "128", "--threads", "1", "-q", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line; stderr: ${err}`)), 30_000);
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/[^ ]+) /.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], stderr: () => err, exit });
      }
    });
    child.on("exit", (code) => reject(new Error(`exited ${code} before listening: ${err}`)));
  });
}

describe("mobilellm serve", () => {
  it("prints one line on loopback, serves the openai client, and SIGTERM ends a running stream's request first, exit 0", async () => {
    const s = await startServe(["--parallel", "2"]);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
    const r = await client.completions.create({ model: "m", prompt: "ROMEO:", max_tokens: 5, temperature: 0 });
    expect(r.choices[0].text.length).toBeGreaterThan(0);
    // A stream in progress when the signal comes runs to its end.
    const stream = await client.completions.create({ model: "m", prompt: "JULIET:", max_tokens: 60, temperature: 0, stream: true });
    let text = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      if (text === "") s.child.kill("SIGTERM");
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe("length");
    expect(await s.exit).toBe(0);
    expect(s.stderr()).toMatch(/SIGTERM: no new requests/);
  });

  it("SIGINT on an idle server exits 0; an API key is then required", async () => {
    const s = await startServe(["--api-key", "k1"]);
    const denied = await fetch(`${s.url}/v1/models`);
    expect(denied.status).toBe(401);
    const allowed = await fetch(`${s.url}/v1/models`, { headers: { authorization: "Bearer k1" } });
    expect(allowed.status).toBe(200);
    s.child.kill("SIGINT");
    expect(await s.exit).toBe(0);
  });
});
