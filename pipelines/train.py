"""Train a sequence-to-sequence model into a run directory: a script to copy and edit.

    python pipelines/train.py --config pipelines/configs/toy.json --out runs/toy [--epochs N] [--resume]
        [--strategy default|mirrored|multi-worker]
    python -m pipelines.train ...            (from the repository root)

It needs only the installed ``keras_s2s`` library, so a copy works from any directory. The
procedure itself (data checks, vocabularies, tf.data, model, ``model.fit``, best model,
learning curves) is ``keras_s2s.train_model``; change the config here, or call the pieces it
is made of (keras_s2s.data, keras_s2s.models, keras_s2s.training) to change the procedure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from keras_s2s.cluster import STRATEGIES, read_tf_config


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="JSON config (see pipelines/configs/)")
    parser.add_argument("--out", required=True, type=Path, help="run directory to write")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    parser.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="tf.distribute strategy; multi-worker reads the cluster from TF_CONFIG")
    args = parser.parse_args(argv)

    from keras_s2s import Seq2SeqConfig
    from keras_s2s.errors import KerasS2SError
    from keras_s2s.tensorflow_setup import import_tensorflow_quietly

    try:
        config = Seq2SeqConfig.from_json(args.config)
        if args.epochs is not None:
            config = config.replace(epochs=args.epochs)
        if args.strategy == "multi-worker":
            read_tf_config()  # a mistake in TF_CONFIG is reported before TensorFlow loads
        import_tensorflow_quietly()
        from keras_s2s import train_model

        train_model(config, args.out, overwrite=args.overwrite, resume=args.resume, strategy=args.strategy)
    except KerasS2SError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
