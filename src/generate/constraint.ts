// What may be sampled at each step. The token loop asks its constraint for the allowed ids before sampling
// and tells it the id chosen; the sampler's settings (penalty, temperature, top-k/p, min-p) then apply to
// the allowed ids only. Without a grammar the constraint is the vocabulary-padding mask, the same at every
// step; with one it is the grammar's mask (src/grammar/), which changes with every token.
import { GrammarError } from "../grammar/ast.js";
import { GrammarMatcher } from "../grammar/matcher.js";
import { GrammarCache, type GrammarSpec } from "../grammar/spec.js";
import { TokenTrie } from "../grammar/vocabulary.js";
import type { TokenBytes } from "../text/token-bytes.js";

export interface TokenConstraint {
  /**
   * The ids that may come next (1 = allowed), or null when the output is complete and nothing may follow
   * (the loop then ends as at end-of-sequence). `budget` is how many tokens may still be generated, this
   * one included. The array stays valid until the next call.
   */
  allowed(budget: number): Uint8Array | null;
  /** Moves past the sampled id. */
  accept(token: number): void;
}

/** The same ids at every step: `allowed[id]` is 1 for ids that are not vocabulary padding. */
export function fixedMask(allowed: Uint8Array): TokenConstraint {
  return { allowed: () => allowed, accept: () => {} };
}

/** A grammar's constraint over a vocabulary of `vocabSize` ids. */
export function grammarConstraint(matcher: GrammarMatcher, vocabSize: number): TokenConstraint {
  const mask = new Uint8Array(vocabSize);
  return {
    allowed(budget: number): Uint8Array | null {
      if (matcher.fillMask(mask, budget)) return mask;
      if (matcher.finished || matcher.canEnd) return null;
      throw new GrammarError("no token of the vocabulary can continue the grammar here (it needs bytes no token has)");
    },
    accept: (token) => matcher.accept(token),
  };
}

/**
 * The grammar constraints of one model: specs compiled and bound to its vocabulary once (the trie is
 * built on the first grammar), a new matcher per generation.
 */
export class GrammarConstraints {
  private readonly cache: GrammarCache;

  constructor(
    tokenBytes: () => TokenBytes,
    private readonly vocabSize: number,
  ) {
    this.cache = new GrammarCache(() => new TokenTrie(tokenBytes()));
  }

  /** A fresh constraint for one generation; throws a GrammarError for a grammar or schema that is refused. */
  constraint(spec: GrammarSpec, eosTokenIds: readonly number[]): TokenConstraint {
    return grammarConstraint(new GrammarMatcher(this.cache.masks(spec), eosTokenIds), this.vocabSize);
  }
}
