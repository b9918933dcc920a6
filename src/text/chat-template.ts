// Renders a checkpoint's Jinja chat template (@huggingface/jinja), the way transformers'
// apply_chat_template does: the template writes BOS and the role headers itself, so its output is
// tokenized without adding special tokens again.
import { Template } from "@huggingface/jinja";

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
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new Error(`chat template does not parse: ${(err as Error).message}`);
    }
  }

  render(messages: readonly ChatMessage[], addGenerationPrompt = true): string {
    if (messages.length === 0) throw new Error("chat: no messages to render");
    for (const m of messages) {
      if (typeof m !== "object" || m === null || typeof m.role !== "string" || typeof m.content !== "string") {
        throw new TypeError("chat: each message needs a string role and a string content");
      }
    }
    return this.template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.specialTokens.bos_token ?? "",
      eos_token: this.specialTokens.eos_token ?? "",
    });
  }
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
