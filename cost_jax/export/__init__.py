"""Export the tracker for deployment: StableHLO or ONNX, in one zip file.

    python -m cost_jax.export --workdir=runs/demo --format=onnx --out=cost_demo.onnx.zip

The per-frame step (network, Hanning window, argmax, decode), the template
encoder and the text encoder become three graphs with the weights inside
and a symbolic batch dimension (`graphs`, `formats`); the zip layout is in
`bundle`; `runtime` runs an artefact, alone or inside a `Tracker`.
"""

from __future__ import annotations

import os

import jax

from cost_jax import checkpointing
from cost_jax.export import bundle, formats, graphs as graphs_lib
from cost_jax.models import factory

__all__ = ["export"]


def export(engine, fmt: str, out, weights_info: str = "") -> dict:
  """Writes ``engine``'s model and weights as a ``fmt`` artefact to ``out``; -> export.json."""
  config, spec = engine.config, engine.spec
  graphs = graphs_lib.tracker_graphs(engine)
  blobs, entries = {}, {}
  for name, graph in graphs.items():
    blobs[name + formats.SUFFIX[fmt]] = formats.serialize(graph, fmt)
    entries[name] = {
        "file": name + formats.SUFFIX[fmt],
        "inputs": [list(i) for i in graph.inputs],
        "outputs": list(graph.outputs),
    }
  meta = {
      "format": fmt,
      "variant": config.variant,
      # The whole config: the runtime's tracker settings (window, min_size,
      # size_lr, crops) are those the model was exported with.
      "config": checkpointing.config_to_dict(config),
      "weights": weights_info,
      "jax_version": jax.__version__,
      "graphs": entries,
      "host": {
          "template_size": spec.template_size,
          "search_size": spec.search_size,
          "text_len": spec.text_len if spec.language else 0,
          "template_factor": float(config.data.template_factor),
          "search_factor": float(config.data.search_factor),
          "window_influence": float(config.track.window_influence),
          "min_size": float(config.track.min_size),
      },
  }
  text_dir = factory.text_model_path(config) if spec.language else None
  if text_dir and not os.path.isdir(text_dir):
    raise FileNotFoundError(f"text model folder {text_dir} not found")
  bundle.write(out, meta, blobs, text_dir)
  return meta
