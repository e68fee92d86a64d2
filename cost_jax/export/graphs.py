"""The three device functions of the tracker as flat, exportable graphs.

`Engine` runs ``encode_template``, ``encode_text`` and ``step`` (network,
Hanning window, argmax, decode) as jitted functions of the variables and
nested caches.  Here the variables are baked in as constants and every
input and output is a named array, with a symbolic batch dimension:

* ``template``: ``template`` (B, Tz, Tz, 3) uint8 -> ``template_<key>``;
* ``text`` (language variants): ``ids``, ``mask`` (B, T) int32 ->
  ``text_<key>``;
* ``step``: ``search`` (B, S, S, 3) uint8, the template and text caches,
  ``geometry`` (B, 5) float32 -> ``box`` (B, 5): cx, cy, w, h, score.

The host side (crops, state) stays `Engine`'s; `runtime.engine` puts an
artefact's graphs into an `Engine`.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from cost_jax.tracking import engine as engine_lib

__all__ = ["Graph", "tracker_graphs", "flatten_cache", "unflatten_cache"]


@dataclasses.dataclass(frozen=True)
class Graph:
  """A flat function: named inputs (shapes with None = batch) -> named outputs."""

  fn: object
  inputs: tuple  # ((name, shape with None for the batch, dtype name), ...)
  outputs: tuple  # names

  def specs(self, batch):
    """jax.ShapeDtypeStruct of every input, the batch dimension set to ``batch``."""
    return [
        jax.ShapeDtypeStruct(
            tuple(batch if d is None else d for d in shape), jnp.dtype(dtype)
        )
        for _, shape, dtype in self.inputs
    ]


def flatten_cache(prefix: str, cache: dict) -> dict:
  """{'tokens': a, 'pos': b} -> {'<prefix>_pos': b, '<prefix>_tokens': a}."""
  return {f"{prefix}_{k}": cache[k] for k in sorted(cache)}


def unflatten_cache(prefix: str, arrays: dict) -> dict:
  """The inverse of `flatten_cache` (other names are ignored)."""
  start = prefix + "_"
  return {k[len(start) :]: v for k, v in arrays.items() if k.startswith(start)}


def _batched_inputs(fn, names, one, two):
  """Input entries: leaves whose first dimension follows the batch get None there."""
  out1, out2 = jax.eval_shape(fn, *one), jax.eval_shape(fn, *two)
  entries = []
  for name in names:
    a, b = out1[name], out2[name]
    shape = ((None,) + a.shape[1:]) if a.shape != b.shape else a.shape
    entries.append((name, shape, jnp.dtype(a.dtype).name))
  return entries


def tracker_graphs(engine: engine_lib.Engine) -> dict:
  """{'template', ['text',] 'step'}: `Graph`s of ``engine``'s model and weights."""
  model, spec, variables = engine.model, engine.spec, engine.variables
  tz, s, t = spec.template_size, spec.search_size, spec.text_len

  def template(z):
    return flatten_cache(
        "template", model.apply(variables, z, method=model.encode_template)
    )

  def text(ids, mask):
    return flatten_cache(
        "text", model.apply(variables, ids, mask, method=model.encode_text)
    )

  def images(side, batch):
    return (jax.ShapeDtypeStruct((batch, side, side, 3), jnp.uint8),)

  def tokens(batch):
    return (jax.ShapeDtypeStruct((batch, t), jnp.int32),) * 2

  graphs = {
      "template": Graph(
          template,
          (("template", (None, tz, tz, 3), "uint8"),),
          tuple(jax.eval_shape(template, *images(tz, 1))),
      )
  }
  cache = _batched_inputs(
      template, graphs["template"].outputs, images(tz, 1), images(tz, 2)
  )
  if spec.language:
    names = tuple(jax.eval_shape(text, *tokens(1)))
    graphs["text"] = Graph(
        text, (("ids", (None, t), "int32"), ("mask", (None, t), "int32")), names
    )
    cache += _batched_inputs(text, names, tokens(1), tokens(2))
  step = functools.partial(
      engine_lib._step,
      forward=lambda v, x, z, c: model.apply(v, x, z, c, method=model.track),
      window=engine_lib.hanning_window(spec.grid_side).astype(np.float32),
      window_influence=float(engine.config.track.window_influence),
      min_size=float(engine.config.track.min_size),
  )
  names = [n for n, _, _ in cache]

  def step_flat(search, *rest):
    arrays = dict(zip(names, rest[:-1]))
    return step(
        variables,
        search,
        unflatten_cache("template", arrays),
        unflatten_cache("text", arrays),
        rest[-1],
    )

  graphs["step"] = Graph(
      step_flat,
      (
          ("search", (None, s, s, 3), "uint8"),
          *cache,
          ("geometry", (None, 5), "float32"),
      ),
      ("box",),
  )
  return graphs


def as_tuple_fn(graph: Graph):
  """``graph.fn`` with outputs as a tuple in ``graph.outputs`` order (export APIs)."""

  def fn(*args):
    out = graph.fn(*args)
    return (
        tuple(out[n] for n in graph.outputs)
        if isinstance(out, dict)
        else (out,)
    )

  return fn
