# The independent decoder the tests hold this project's ggml decoding to: llama.cpp's own `gguf` Python package
# (installed by `npm run fetch:models`). Reads a manifest (JSON: [{"type": "Q4_1", "in": path, "out": path}, ...]), and
# writes each input's values, as gguf.quants.dequantize gives them, to its output as little-endian float32.
import json
import sys

import numpy as np
import gguf


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    for case in cases:
        data = np.fromfile(case["in"], dtype=np.uint8)
        qtype = gguf.GGMLQuantizationType[case["type"]]
        values = gguf.quants.dequantize(data, qtype)
        np.asarray(values, dtype="<f4").reshape(-1).tofile(case["out"])


if __name__ == "__main__":
    main()
