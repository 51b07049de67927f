"""The words the decoding benchmarks translate: the first distinct sources of a run's test split."""

from __future__ import annotations

from pathlib import Path


def first_test_words(run_dir: Path, count: int) -> list[str]:
    """The first ``count`` distinct source strings of the test split of training run ``run_dir``
    (``make demo`` makes runs/g2p_cmudict). Exits with one line if ``run_dir`` is not a run."""
    config_file = Path(run_dir) / "config.json"
    if not config_file.is_file():
        raise SystemExit(f"{run_dir} is not a training run directory (no config.json): run `make demo` first, or pass --run-dir")
    from keras_s2s.config import Seq2SeqConfig

    with open(Seq2SeqConfig.from_json(config_file).test_file, encoding="utf-8") as lines:
        return list(dict.fromkeys(line.split("\t")[0] for line in lines))[:count]
