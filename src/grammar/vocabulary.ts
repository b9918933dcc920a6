// The vocabulary as a byte trie, for walking all tokens at once: tokens sharing a prefix share the work of
// matching it, and a prefix the grammar refuses rules out every token under it in one step.
//
// Nodes are stored in depth-first (preorder) order, which is the tokens' byte order: a node's subtree is
// the range [node, subtreeEnd[node]), and a walk keeps one parse level per depth (parse-levels.ts), since
// the node before a node at depth d has left the levels above d as they were for its parent.
import type { TokenBytes } from "../text/token-bytes.js";

export class TokenTrie {
  /** Ids in the vocabulary (with or without bytes). */
  readonly vocabSize: number;
  readonly bytes: TokenBytes;
  /** Byte that leads to each node (node 0, the root, has none). */
  readonly nodeByte: Uint8Array;
  readonly nodeDepth: Int32Array;
  /** End (exclusive) of each node's subtree in preorder. */
  readonly subtreeEnd: Int32Array;
  /** Deepest node (longest token) in each node's subtree. */
  readonly subtreeDepth: Int32Array;
  /** Token ids whose bytes end at node n: tokens[tokenStart[n] .. tokenStart[n + 1]). */
  readonly tokenStart: Int32Array;
  readonly tokens: Int32Array;
  readonly numNodes: number;
  readonly maxTokenBytes: number;

  constructor(bytes: TokenBytes) {
    const { data, offsets } = bytes;
    this.bytes = bytes;
    this.vocabSize = offsets.length - 1;
    const ids: number[] = [];
    for (let id = 0; id < this.vocabSize; id++) if (offsets[id + 1] > offsets[id]) ids.push(id);
    const compare = (a: number, b: number): number => {
      const ea = offsets[a + 1];
      const eb = offsets[b + 1];
      let i = offsets[a];
      let j = offsets[b];
      for (; i < ea && j < eb; i++, j++) if (data[i] !== data[j]) return data[i] - data[j];
      return ea - i - (eb - j) || a - b;
    };
    ids.sort(compare);

    // Nodes in preorder: a token adds the nodes below its common prefix with the token before it.
    let total = 1;
    let maxLen = 0;
    const lcp = new Int32Array(ids.length);
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      const len = offsets[id + 1] - offsets[id];
      if (len > maxLen) maxLen = len;
      if (k > 0) {
        const p = ids[k - 1];
        const pl = offsets[p + 1] - offsets[p];
        let m = 0;
        while (m < len && m < pl && data[offsets[p] + m] === data[offsets[id] + m]) m++;
        lcp[k] = m;
      }
      total += len - lcp[k];
    }
    this.maxTokenBytes = maxLen;
    this.numNodes = total;
    this.nodeByte = new Uint8Array(total);
    this.nodeDepth = new Int32Array(total);
    this.subtreeEnd = new Int32Array(total);
    this.subtreeDepth = new Int32Array(total);
    this.tokens = Int32Array.from(ids);
    const parent = new Int32Array(total);
    const counts = new Int32Array(total + 1);
    const path = new Int32Array(maxLen + 1); // the node at each depth of the current token's path
    let n = 1;
    let pathLen = 0;
    for (let k = 0; k < ids.length; k++) {
      const start = offsets[ids[k]];
      const len = offsets[ids[k] + 1] - start;
      for (; pathLen > lcp[k]; pathLen--) this.subtreeEnd[path[pathLen]] = n;
      for (let d = lcp[k] + 1; d <= len; d++) {
        this.nodeByte[n] = data[start + d - 1];
        this.nodeDepth[n] = d;
        parent[n] = path[d - 1];
        path[d] = n++;
      }
      pathLen = len;
      // Sorted tokens reach their nodes in preorder, so counting per node gives each node's range.
      counts[path[len] + 1]++;
    }
    for (; pathLen > 0; pathLen--) this.subtreeEnd[path[pathLen]] = n;
    this.subtreeEnd[0] = n;
    for (let i = 0; i < total; i++) counts[i + 1] += counts[i];
    this.tokenStart = counts;
    const sd = this.subtreeDepth;
    sd.set(this.nodeDepth);
    for (let i = total - 1; i > 0; i--) if (sd[i] > sd[parent[i]]) sd[parent[i]] = sd[i];
  }

  /** The bytes of a token id. */
  tokenBytes(id: number): Uint8Array {
    return this.bytes.data.subarray(this.bytes.offsets[id], this.bytes.offsets[id + 1]);
  }
}
