"""Serialising a `graphs.Graph`: StableHLO (jax.export) or ONNX (jax2onnx).

StableHLO is JAX's own export: the jitted graph, lowered once, serialised
with a symbolic batch dimension ``b``; `jax.export.deserialize` reloads it
in plain JAX on any backend, no model code needed.

ONNX goes through jax2onnx, from the same JAX function (no second model
to keep in sync).  The function is first traced to a jaxpr of lax
primitives, with one substitution: ``flax.linen.max_pool`` over NHWC
becomes the maximum of its shifted strided windows (equal, bit for bit)
because jax2onnx lowers a 4-D ``reduce_window_max`` to a 4-D ONNX MaxPool,
which onnxruntime refuses.
"""

from __future__ import annotations

import contextlib
import itertools
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.extend import core as jex_core

from cost_jax.export import graphs as graphs_lib

__all__ = ["FORMATS", "SUFFIX", "serialize", "window_max_pool"]

FORMATS = ("stablehlo", "onnx")
SUFFIX = {"stablehlo": ".stablehlo", "onnx": ".onnx"}


def _stablehlo(graph: graphs_lib.Graph) -> bytes:
  batch = jax.export.symbolic_shape("b")[0]
  exported = jax.export.export(jax.jit(graphs_lib.as_tuple_fn(graph)))(
      *graph.specs(batch)
  )
  return bytes(exported.serialize())


def _edge_pad(x, axis: int, before: int, after: int):
  """Repeats the first / last slice along ``axis`` (concatenation: any batch size)."""
  n = x.shape[axis]
  first = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
  last = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
  return jnp.concatenate([first] * before + [x] + [last] * after, axis=axis)


def window_max_pool(x, window_shape, strides=None, padding="VALID"):
  """``flax.linen.max_pool`` on (B, H, W, C) as a maximum of strided slices.

  Padding repeats the edge instead of -inf: each padded window still holds
  that edge pixel (padding < window), so every maximum is the same value.
  """
  strides = tuple(strides or (1,) * len(window_shape))
  if isinstance(padding, str):
    if padding != "VALID":
      raise NotImplementedError(
          f"max_pool padding {padding!r}: give explicit pairs"
      )
    padding = ((0, 0),) * len(window_shape)
  for axis, ((lo, hi), k) in enumerate(zip(padding, window_shape), start=1):
    if max(lo, hi) >= k:
      raise NotImplementedError(
          f"max_pool padding {padding} not smaller than {window_shape}"
      )
    x = _edge_pad(x, axis, lo, hi)
  out = None
  for offsets in itertools.product(*(range(k) for k in window_shape)):
    v = x
    for axis, (o, k, s) in enumerate(
        zip(offsets, window_shape, strides), start=1
    ):
      n = (x.shape[axis] - k) // s + 1
      v = jax.lax.slice_in_dim(v, o, o + s * (n - 1) + 1, s, axis=axis)
    out = v if out is None else jnp.maximum(out, v)
  return out


@contextlib.contextmanager
def _onnx_friendly_layers():
  saved = nn.max_pool
  nn.max_pool = window_max_pool
  try:
    yield
  finally:
    nn.max_pool = saved


def _onnx(graph: graphs_lib.Graph) -> bytes:
  try:  # Optional: only ONNX export needs jax2onnx (requirements-export.txt).
    import jax2onnx  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ImportError(
        f"ONNX export needs jax2onnx ({err}). Fix: pip install --no-deps "
        "-r requirements-export.txt"
    ) from None
  batch = jax.export.symbolic_shape("B")[0]
  specs = graph.specs(batch)
  with _onnx_friendly_layers():
    closed = jax.make_jaxpr(graphs_lib.as_tuple_fn(graph))(*specs)
  primitives = jex_core.jaxpr_as_fun(closed)
  quiet = logging.getLogger("jax2onnx")
  level = quiet.level
  quiet.setLevel(logging.ERROR)  # it logs every optional plugin it skips
  try:
    model = jax2onnx.to_onnx(
        lambda *xs: tuple(primitives(*xs)),
        specs,
        model_name=graph.outputs[0],
        input_names=[n for n, _, _ in graph.inputs],
        output_names=list(graph.outputs),
    )
  finally:
    quiet.setLevel(level)
  return model.SerializeToString()


def serialize(graph: graphs_lib.Graph, fmt: str) -> bytes:
  """The bytes of ``graph`` in format ``fmt`` ('stablehlo' or 'onnx')."""
  if fmt not in FORMATS:
    raise ValueError(
        f'unknown export format {fmt!r} (one of {", ".join(FORMATS)})'
    )
  return _stablehlo(graph) if fmt == "stablehlo" else _onnx(graph)
