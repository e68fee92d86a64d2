"""The exported artefact: one zip file with the graphs and what the host needs.

    export.json          format, variant, weights, host settings, each graph's
                         file and its named inputs / outputs (None = batch)
    template.<ext>       template crop -> template cache
    text.<ext>           token ids, mask -> text cache (language variants)
    step.<ext>           search crop + caches + geometry -> cx, cy, w, h, score
    text_model/          the text model's vocabulary and config.json (no weights)

``<ext>`` is ``stablehlo`` (a serialised `jax.export.Exported`) or ``onnx``.
Reading needs only the standard library (and `cost_jax.text` to tokenize).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

from cost_jax import text as text_lib
from cost_jax.evaluation import results_io

__all__ = ["Bundle", "write", "TEXT_FILES", "META"]

META = "export.json"
TEXT_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "config.json",
)


def write(path, meta: dict, blobs: dict, text_dir: str | None = None) -> None:
  """Writes the zip atomically: ``meta`` as export.json, ``blobs`` {file: bytes}."""
  members = dict(blobs)
  members[META] = json.dumps(meta, indent=1, sort_keys=True) + "\n"
  for name in TEXT_FILES if text_dir else ():
    if os.path.isfile(os.path.join(text_dir, name)):
      with open(os.path.join(text_dir, name), "rb") as f:
        members[f"text_model/{name}"] = f.read()
  results_io.atomic_write_zip(path, members)


class Bundle:
  """An exported zip: ``meta`` (export.json), ``graphs``, ``read(graph)``, ``tokens(text)``."""

  def __init__(self, path):
    self.path = os.fspath(path)
    if not zipfile.is_zipfile(self.path):
      raise ValueError(
          f"{self.path} is not an exported tracker (a zip written by "
          "python -m cost_jax.export)"
      )
    with zipfile.ZipFile(self.path) as z:
      self.meta = json.loads(z.read(META))
    self.graphs = tuple(self.meta["graphs"])
    self._text_dir = None
    self._tokenizer = None

  @property
  def format(self) -> str:
    return self.meta["format"]

  def read(self, graph: str) -> bytes:
    """The serialised graph (bytes of a .stablehlo or .onnx file)."""
    with zipfile.ZipFile(self.path) as z:
      return z.read(self.meta["graphs"][graph]["file"])

  def inputs(self, graph: str) -> list:
    return [name for name, _, _ in self.meta["graphs"][graph]["inputs"]]

  def outputs(self, graph: str) -> list:
    return list(self.meta["graphs"][graph]["outputs"])

  @property
  def text_dir(self) -> str:
    """A temporary folder holding text_model/ (vocabulary, config.json), extracted once."""
    if self._text_dir is None:
      self._tmp = tempfile.TemporaryDirectory(prefix="cost_export_text_")
      with zipfile.ZipFile(self.path) as z:
        for name in z.namelist():
          if name.startswith("text_model/") and not name.endswith("/"):
            target = os.path.join(self._tmp.name, os.path.basename(name))
            with open(target, "wb") as f:
              f.write(z.read(name))
      self._text_dir = self._tmp.name
    return self._text_dir

  def tokens(self, description: str) -> dict:
    """{'ids', 'mask'}: int32 (1, T) inputs of the text graph for ``description``."""
    if self._tokenizer is None:
      self._tokenizer = text_lib.Tokenizer(
          self.text_dir, self.meta["host"]["text_len"]
      )
    ids, mask = self._tokenizer.encode(description)
    return {"ids": ids[None], "mask": mask[None]}
