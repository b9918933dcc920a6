// The import rules of src/, checked by `npm run lint:imports` (part of `npm test`).
//
// Each folder of src/ is a layer, and a module imports only from its own layer and the layers below it.
// Bottom to top:
//
//   env        ByteSource/ByteSink and ModelFolder: how bytes and folders are reached, nothing else
//   kernels    the Wasm loader, the checked kernel wrappers and their scalar twins
//   threads    the worker pool and the job codec the engine and its workers share
//   model      config, checkpoint readers and writers, quantization, the KV cache, the int4 engine
//   reference  the float32 forward pass (the oracle) and its backend
//   text       tokenizer, chat template
//   grammar    GBNF and JSON Schema grammars, the byte-level matcher, vocabulary masks
//   generate   sampler, stop strings, the token loop over a Backend
//   session    the Model facade and openModel(folder, platform)
//   serve      environment-neutral serving: sequences, the scheduler, the OpenAI mapping, SSE framing
//   node       Node's side: files, folders, the platform, the bundled model, synth  } faces: neither
//   browser    the browser's side: URL and picked-file folders, worker protocol       } imports the other
//   api.ts     the Node library entry
//   cli        the commands, which use only api.ts
//
// Node built-ins (node:*) are imported only in node/ and cli/, so the browser bundle never needs a stub.
const LAYERS = ["env", "kernels", "threads", "model", "reference", "text", "grammar", "generate", "session", "serve", "node|browser", "api", "cli"];

const folder = (layer) => (layer === "api" ? "src/api\\.ts$" : `src/(${layer})/`);

/** For each layer, every layer above it is forbidden; the two faces also exclude each other. */
function layerRules() {
  const rules = [];
  LAYERS.forEach((layer, i) => {
    const above = LAYERS.slice(i + 1);
    const forbidden = [...above];
    if (layer === "node|browser") {
      rules.push({ name: "node-not-browser", severity: "error", from: { path: "^src/node/" }, to: { path: "^src/browser/" } });
      rules.push({ name: "browser-not-node", severity: "error", from: { path: "^src/browser/" }, to: { path: "^src/node/" } });
    }
    if (forbidden.length === 0) return;
    rules.push({
      name: `${layer.replace("|", "-")}-imports-only-below`,
      comment: `${layer} may not import from a layer above it (${forbidden.join(", ")})`,
      severity: "error",
      from: { path: `^${folder(layer)}` },
      to: { path: `^(${forbidden.map(folder).join("|")})` },
    });
  });
  return rules;
}

module.exports = {
  forbidden: [
    ...layerRules(),
    {
      name: "cli-through-api",
      comment: "the commands use the library's public face (src/api.ts), nothing below it",
      severity: "error",
      from: { path: "^src/cli/" },
      to: { path: "^src/", pathNot: "^src/(cli/|api\\.ts$)" },
    },
    {
      name: "node-builtins-in-the-node-seam",
      comment: "node:* only in src/node/ and src/cli/: everything else also runs in a browser",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(node|cli)/" },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "openai-types-only",
      comment: "openai is an optional peer dependency for its types: src/ imports it with `import type` only, so nothing of it loads at run time",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "node_modules/openai/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "no-cycles",
      comment: "no file imports itself through others",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "no-unresolvable",
      severity: "error",
      from: { path: "^src/" },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
  },
};
