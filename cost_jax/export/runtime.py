"""Running an exported artefact: its graphs as functions, or inside a `Tracker`.

    bundle = Bundle('cost.zip')
    run = functions(bundle)          # {'template', 'text', 'step'}: dict -> dict of numpy
    tracker = Tracker(config, None, engine=engine(bundle))   # the JAX tracker's host code

StableHLO graphs run through `jax.export.deserialize` (plain JAX, any
backend); ONNX graphs through `onnxruntime` (CPU).  `engine` puts them in
place of the jitted functions of an `Engine`, so crops, state and
decoding are exactly the tracker's.
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from cost_jax.export import graphs as graphs_lib
from cost_jax.export.bundle import Bundle
from cost_jax.tracking.engine import Engine

__all__ = ["functions", "engine", "config_of"]


def _stablehlo(bundle: Bundle, name: str):
  exported = jax.export.deserialize(bytearray(bundle.read(name)))
  inputs, outputs = bundle.inputs(name), bundle.outputs(name)

  def call(arrays: dict) -> dict:
    out = exported.call(*(arrays[n] for n in inputs))
    return {n: np.asarray(v) for n, v in zip(outputs, out)}

  return call


def _onnx(bundle: Bundle, name: str):
  try:  # Optional: only running an ONNX artefact needs onnxruntime.
    import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ImportError(
        f"running an ONNX export needs onnxruntime ({err}). Fix: pip install "
        "onnxruntime"
    ) from None
  session = ort.InferenceSession(
      bundle.read(name), providers=["CPUExecutionProvider"]
  )
  inputs, outputs = bundle.inputs(name), bundle.outputs(name)

  def call(arrays: dict) -> dict:
    out = session.run(outputs, {n: np.asarray(arrays[n]) for n in inputs})
    return dict(zip(outputs, out))

  return call


def functions(bundle: Bundle) -> dict:
  """{graph name: f(dict of arrays) -> dict of numpy arrays} in the artefact's runtime."""
  load = _stablehlo if bundle.format == "stablehlo" else _onnx
  return {name: load(bundle, name) for name in bundle.graphs}


def config_of(bundle: Bundle):
  """The config the artefact was exported with (model, tracker and crop
  settings), its text model being the one inside the artefact."""
  config = ml_collections.ConfigDict(bundle.meta["config"])
  if config.model.language:
    config.text.path = bundle.text_dir
  return config


def engine(bundle: Bundle):
  """An `Engine` whose device functions are the artefact's graphs (weights inside them)."""
  run = functions(bundle)
  e = Engine(config_of(bundle), None)

  def encode_template(variables, z):
    del variables
    return graphs_lib.unflatten_cache(
        "template", run["template"]({"template": z})
    )

  def encode_text(variables, ids, mask):
    del variables
    return graphs_lib.unflatten_cache(
        "text", run["text"]({"ids": ids, "mask": mask})
    )

  def step(variables, crops, template, text, geometry):
    del variables
    arrays = {"search": crops, "geometry": geometry}
    arrays.update(graphs_lib.flatten_cache("template", template))
    arrays.update(graphs_lib.flatten_cache("text", text))
    return run["step"](arrays)["box"]

  e.encode_template, e.encode_text, e.step = encode_template, encode_text, step
  return e
