"""The export directory layout, its metadata and checksums (plain Python: no TensorFlow).

    exported/NAME/
      encoder/N/            SavedModel, signature serving_default (TF Serving version layout)
      decoder/N/            SavedModel, signature serving_default
      onnx/encoder.onnx     tf2onnx, dynamic batch/time axes
      onnx/decoder.onnx
      assets/source_vocab.txt, target_vocab.txt, config.json
      assets/metadata.json  graphs' tensors, decoding interface, special ids, text specs,
                            library versions, sha256 of every file of this export
      models.config         TF Serving model config serving both SavedModels
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

from keras_s2s.errors import ExportError

FORMAT = "keras-s2s-export"
FORMAT_VERSION = 1


class ExportLayout:
    """Paths inside one export directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.assets = self.path / "assets"
        self.metadata = self.assets / "metadata.json"
        self.source_vocab = self.assets / "source_vocab.txt"
        self.target_vocab = self.assets / "target_vocab.txt"
        self.config = self.assets / "config.json"
        self.onnx_dir = self.path / "onnx"
        self.models_config = self.path / "models.config"

    def savedmodel_dir(self, graph: str, version: int) -> Path:
        return self.path / graph / str(version)

    def onnx_file(self, graph: str) -> Path:
        return self.onnx_dir / f"{graph}.onnx"

    def versions(self, graph: str = "encoder") -> list[int]:
        """Numeric version directories present for ``graph``, ascending."""
        directory = self.path / graph
        if not directory.is_dir():
            return []
        return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())

    def read_metadata(self) -> dict:
        if not self.metadata.is_file():
            raise ExportError(
                f"{self.path} is not a complete export: {self.metadata} is missing "
                "(an interrupted export leaves no metadata; run keras-s2s export again)"
            )
        try:
            metadata = json.loads(self.metadata.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ExportError(f"{self.metadata}: corrupted metadata ({err})") from None
        if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
            raise ExportError(
                f"{self.metadata}: not a {FORMAT} v{FORMAT_VERSION} metadata file "
                f"(format={metadata.get('format')!r}, format_version={metadata.get('format_version')!r})"
            )
        return metadata

    def relative(self, path: Path) -> str:
        return path.relative_to(self.path).as_posix()

    def files_under(self, *roots: Path) -> list[Path]:
        files: list[Path] = []
        for root in roots:
            files.extend([root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()))
        return files

    def verify(self, metadata: dict, roots: Iterable[Path]) -> None:
        """Checks that every file under ``roots`` that metadata lists is present and unchanged,
        and that every listed file under ``roots`` exists. Raises ExportError naming the file."""
        expected: dict[str, str] = metadata["files"]
        roots = list(roots)
        prefixes = [self.relative(root) for root in roots]
        for relative, digest in expected.items():
            if not any(relative == p or relative.startswith(p + "/") for p in prefixes):
                continue
            path = self.path / relative
            if not path.is_file():
                raise ExportError(f"export file missing: {path} (listed in {self.metadata})")
            if sha256_of(path) != digest:
                raise ExportError(
                    f"checksum mismatch for {path}: the file changed or is corrupted since export "
                    f"(sha256 in {self.metadata.name} is {digest[:12]}...); re-export the model"
                )


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file at ``path``, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
