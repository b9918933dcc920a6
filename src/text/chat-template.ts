// Renders a checkpoint's Jinja chat template (@huggingface/jinja), the way transformers'
// apply_chat_template does: the template writes BOS and the role headers itself, so its output is
// tokenized without adding special tokens again.
//
// A template comes from a downloaded file, and Jinja has loops: `{% for i in range(10**9) %}` or nested
// loops would hang the process or exhaust memory. @huggingface/jinja has no limits of its own, so rendering
// runs on a subclass of its interpreter that charges one step per evaluated node, per loop iteration (the
// whole iterable up front, before the first iteration) and per item range() would make (before making
// it), and checks every string and list a node produces against a size cap. Past a limit the render stops
// with a TemplateLimitError; the limits are far above what real chat templates need (a 60-turn Llama-4
// conversation takes about 2,000 steps).
import { Environment as JinjaEnvironment, Interpreter as JinjaInterpreter, Template } from "@huggingface/jinja";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "ipython" | "tool";
  content: string;
}

export class ChatTemplate {
  private readonly template: Template;

  /**
   * @param stop stop strings that end an assistant turn when the format has no end-of-turn token (the
   *   built-in plain dialogue ends a speech with a blank line).
   */
  constructor(
    readonly source: string,
    private readonly specialTokens: { bos_token: string | null; eos_token: string | null },
    readonly stop: readonly string[] = [],
  ) {
    // The library preprocesses the source with regular expressions before parsing it, outside any limit of
    // the render: check first that this stays quick.
    const problem = sourceProblem(source);
    if (problem !== null) throw new TemplateLimitError(`chat template ${problem}`);
    try {
      this.template = new Template(source);
    } catch (err) {
      // The library's lexer and parser throw SyntaxErrors; anything else is the library tripping over an
      // unfinished tag (its own message would be "Cannot read properties of undefined").
      const why = err instanceof SyntaxError ? err.message.split("\n")[0] : "the template library fails on it (an unfinished tag or expression?)";
      throw new Error(`chat template does not parse: ${why}`);
    }
  }

  /**
   * @throws TemplateLimitError when the template runs past TEMPLATE_LIMITS, Error when it fails otherwise
   *   (raise_exception, a type error): both with a one-line message.
   */
  render(messages: readonly ChatMessage[], addGenerationPrompt = true): string {
    if (messages.length === 0) throw new Error("chat: no messages to render");
    for (const m of messages) {
      if (typeof m !== "object" || m === null || typeof m.role !== "string" || typeof m.content !== "string") {
        throw new TypeError("chat: each message needs a string role and a string content");
      }
    }
    return renderBounded(this.template, {
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.specialTokens.bos_token ?? "",
      eos_token: this.specialTokens.eos_token ?? "",
    });
  }
}

/** What one render may do; a template past any of them is refused. */
export const TEMPLATE_LIMITS = {
  /** Evaluated nodes + LOOP_ITERATION_STEPS per loop iteration + range() items: about a second of work. */
  steps: 1_000_000,
  /** Characters of any string a node produces, the output included (16 MiB as UTF-16 at most x2). */
  chars: 8 * 1024 * 1024,
  /** Items of any list a node produces. */
  items: 1_000_000,
  /** Wall-clock time, a backstop for work inside one step (a filter over a large string). */
  ms: 5_000,
  /** Integers written or computed in the template: widths (indent, tojson) allocate this many characters. */
  integer: 1_000_000,
  /** Characters of the template's source (real ones have a few thousand; Llama 4's about 5,000). */
  sourceChars: 256 * 1024,
  /**
   * Sum over the source's runs of whitespace of the run's length squared. @huggingface/jinja's lexer first
   * rewrites the source with /(\s*){%(-?)\s*(?:end)?generation.../, which backtracks through each run from
   * each of its characters: about 2 ns per unit here, so 10^8 is about 0.2 s (a million spaces would be an
   * hour). Real templates, indented by tens of spaces, stay below 10^6.
   */
  whitespaceWork: 1e8,
} as const;

/** Why `source` is refused before the library sees it, or null. */
function sourceProblem(source: string): string | null {
  if (source.length > TEMPLATE_LIMITS.sourceChars) return `has ${source.length} characters, more than ${TEMPLATE_LIMITS.sourceChars}`;
  let work = 0;
  let longest = 0;
  for (const m of source.matchAll(/\s+/g)) {
    const n = m[0].length;
    work += n * n;
    longest = Math.max(longest, n);
  }
  if (work > TEMPLATE_LIMITS.whitespaceWork) {
    return `has too much whitespace in long runs (the longest ${longest} characters): the template library's preprocessing takes time quadratic in a run's length`;
  }
  return null;
}

export class TemplateLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TemplateLimitError";
  }
}

/** A loop iteration costs the library about as much as 8 node evaluations (it builds a scope per item). */
const LOOP_ITERATION_STEPS = 8;

// The package's type declarations import their siblings without file extensions, which NodeNext
// resolution cannot follow; these are the few shapes used here, as the package's runtime.ts defines them.
interface Node {
  type: string;
}
interface Value {
  type: string;
  value: unknown;
}
interface Environment {
  set(name: string, value: unknown): unknown;
}
interface Interpreter {
  run(program: unknown): Value;
  evaluate(node: Node | undefined, env: Environment): Value;
}
const Interpreter = JinjaInterpreter as unknown as new (env: Environment) => Interpreter;
const Environment = JinjaEnvironment as unknown as new () => Environment;

/** The library's interpreter with a step budget, size caps and a deadline (see the file comment). */
class BoundedInterpreter extends Interpreter {
  private steps = 0;
  private readonly deadline = Date.now() + TEMPLATE_LIMITS.ms;
  /** Iterables of the for loops met so far: their length is charged when they are evaluated. */
  private readonly loopIterables = new WeakSet<object>();

  charge(n: number, what: string): void {
    this.steps += n;
    if (this.steps > TEMPLATE_LIMITS.steps) {
      throw new TemplateLimitError(`chat template runs too long: ${what} goes past ${TEMPLATE_LIMITS.steps} steps`);
    }
  }

  override evaluate(node: Node | undefined, env: Environment): Value {
    this.charge(1, "rendering");
    if ((this.steps & 1023) === 0 && Date.now() > this.deadline) {
      throw new TemplateLimitError(`chat template runs too long: past ${TEMPLATE_LIMITS.ms} ms`);
    }
    if (node !== undefined && node.type === "For") {
      const f = node as unknown as { iterable: { type: string; lhs?: object } };
      // `for x in xs if test` evaluates the select expression's left side as the iterable.
      this.loopIterables.add(f.iterable.type === "SelectExpression" && f.iterable.lhs ? f.iterable.lhs : f.iterable);
    }
    const v = super.evaluate(node, env);
    const value: unknown = v.value;
    if (typeof value === "string") {
      if (value.length > TEMPLATE_LIMITS.chars) {
        throw new TemplateLimitError(`chat template output too large: a string of ${value.length} characters (limit ${TEMPLATE_LIMITS.chars})`);
      }
    } else if (Array.isArray(value) || value instanceof Map) {
      const n = Array.isArray(value) ? value.length : value.size;
      if (n > TEMPLATE_LIMITS.items) {
        throw new TemplateLimitError(`chat template output too large: a list of ${n} items (limit ${TEMPLATE_LIMITS.items})`);
      }
      if (node !== undefined && this.loopIterables.has(node)) this.charge(n * LOOP_ITERATION_STEPS, "a for loop");
    } else if (typeof value === "number" && Math.abs(value) > TEMPLATE_LIMITS.integer && node !== undefined && node.type !== "Identifier" && node.type !== "MemberExpression") {
      // Numbers the caller passed in (read through an identifier or a member) are data; numbers the
      // template writes or computes can become a width that allocates that many characters.
      throw new TemplateLimitError(`chat template number ${value} is out of range (|n| <= ${TEMPLATE_LIMITS.integer})`);
    }
    return v;
  }
}

/** Python's range(), refusing before it allocates a list past the budget. */
function boundedRange(interp: BoundedInterpreter): (...args: unknown[]) => number[] {
  return (...args: unknown[]) => {
    if (args.length < 1 || args.length > 3 || !args.every((a) => typeof a === "number" && Number.isSafeInteger(a))) {
      throw new Error("range() takes one to three integers");
    }
    const [start, stop, step] = args.length === 1 ? [0, args[0] as number, 1] : [args[0] as number, args[1] as number, (args[2] as number | undefined) ?? 1];
    if (step === 0) throw new Error("range() step must not be zero");
    const n = Math.max(0, Math.ceil((stop - start) / step));
    if (n > TEMPLATE_LIMITS.items) throw new TemplateLimitError(`chat template range() of ${n} items (limit ${TEMPLATE_LIMITS.items})`);
    interp.charge(n, "range()");
    return Array.from({ length: n }, (_, i) => start + i * step);
  };
}

/** Python's strftime for the codes chat templates use (Llama 3.1 writes the date with "%d %b %Y"). */
function strftimeNow(format: unknown): string {
  if (typeof format !== "string") throw new Error("strftime_now() takes a format string");
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  const month = (style: "long" | "short") => new Intl.DateTimeFormat("en-US", { month: style }).format(d);
  return format.replace(/%[YmdbBHM%]/g, (c) =>
    c === "%Y" ? String(d.getFullYear()) : c === "%m" ? pad(d.getMonth() + 1) : c === "%d" ? pad(d.getDate()) : c === "%b" ? month("short") : c === "%B" ? month("long") : c === "%H" ? pad(d.getHours()) : c === "%M" ? pad(d.getMinutes()) : "%",
  );
}

/**
 * Template.render with the bounded interpreter. The globals are the library's own set (its setupGlobals
 * is not exported) with range() bounded.
 */
function renderBounded(template: Template, items: Record<string, unknown>): string {
  const env = new Environment();
  const interp = new BoundedInterpreter(env);
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    raise_exception: (msg: unknown) => {
      throw new Error(`chat template raised: ${String(msg)}`);
    },
    range: boundedRange(interp),
    strftime_now: strftimeNow,
    ...items,
  };
  for (const [k, v] of Object.entries(globals)) env.set(k, v);
  let out: Value;
  try {
    out = interp.run((template as unknown as { parsed: unknown }).parsed);
  } catch (err) {
    if (err instanceof TemplateLimitError) throw err;
    // A RangeError here is V8's "Invalid string length" or a call stack overflow from deep recursion.
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`chat template failed: ${msg.split("\n")[0]}`);
  }
  return String(out.value);
}

/**
 * Finds the template the way transformers does: `chat_template.jinja` beside the tokenizer (newer
 * checkpoints), else the `chat_template` key of tokenizer_config.json (a string, or a list of named
 * templates of which "default" is used).
 */
export function findChatTemplate(tokenizerConfig: Record<string, unknown>, jinjaFile: string | null): string | null {
  if (jinjaFile !== null) return jinjaFile;
  const t = tokenizerConfig["chat_template"];
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t.find((e): e is { name: string; template: string } =>
      typeof e === "object" && e !== null && (e as { name?: unknown }).name === "default",
    );
    if (named && typeof named.template === "string") return named.template;
  }
  return null;
}

/**
 * The template used when a checkpoint has none (a base model such as the bundled Shakespeare one): each
 * message as a speech in a play, "ROLE:" on its own line, the text, a blank line. It matches the layout
 * of the Tiny Shakespeare text, so a model trained on it answers in turn; a blank line ends the answer.
 */
export const PLAIN_DIALOGUE_TEMPLATE = `{{- bos_token }}
{%- for message in messages %}
{{- message['role'] | upper + ':\n' + message['content'] | trim + '\n\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- 'ASSISTANT:\n' }}
{%- endif %}`;

export const PLAIN_DIALOGUE_STOP = ["\n\n"];

/**
 * Gemma's chat format, for a Gemma file that carries no template (the base models: src/text/ggml-tokenizer.ts
 * picks it): each turn "<start_of_turn>" + role ("model" for the assistant) + a newline, the message,
 * "<end_of_turn>" and a newline; a system message is put before the first user message, after a blank
 * line, as Gemma has no system role; the generation prompt opens a model turn. The model ends its turn with
 * <end_of_turn>, one of the file's end-of-generation tokens.
 */
export const GEMMA_TURNS_TEMPLATE = `{{- bos_token }}
{%- set system = messages[0]['content'] | trim + '\n\n' if messages[0]['role'] == 'system' else '' %}
{%- for message in messages if message['role'] != 'system' %}
{{- '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' }}
{{- (system if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<start_of_turn>model\n' }}
{%- endif %}`;
