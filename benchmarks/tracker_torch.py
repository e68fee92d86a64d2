"""The PyTorch reference's side of benchmarks/tracker_speed.py (f32, eager).

* single stream: torch_reference.tracker.ReferenceTracker (TransT's loop:
  numpy crop, tensor copy, network on cached template/text, window, argmax
  and decode on the host);
* batched: its network step (`track` on cached features + window/argmax in
  torch), uint8 crops copied in and the boxes read back.

Each returns (seconds of the first call, repeat() -> frames/s), the form
`benchmarks.timing.alternate` takes.  HOOK for more reference variants
(torch.compile, bf16 autocast): add functions of the same form here.
"""

import dataclasses

import numpy as np

from benchmarks import timing
from cost_jax.tracking.engine import hanning_window


def reference_model(config, spec):
  """(torch, reference network with random weights), or None without torch."""
  try:
    # Lazy: torch (optional, heavy), which torch_reference also needs.
    import torch
    import torch_reference
  except ImportError as e:
    print(f'PyTorch reference not timed: {e}')
    return None
  bert = dataclasses.asdict(spec.bert) if spec.language else None
  ref = torch_reference.build_model(config, bert).eval()
  torch_reference.randomize_(ref, 0)
  return torch, ref


def single(ref, config, tokens, frames, boxes):
  """ReferenceTracker.track as a `timing.stream`."""
  # Lazy: torch_reference imports torch (optional, heavy).
  from torch_reference import tracker as ref_tracker

  ids, mask = (tokens[0][0], tokens[1][0]) if tokens else (None, None)
  tracker = ref_tracker.ReferenceTracker(ref, config)

  def reset(b):
    if b is None:
      tracker.initialize(frames[0], boxes[0], ids, mask)
    else:
      tracker.center, tracker.size = b[:2] + b[2:] / 2, b[2:].copy()

  return timing.stream(tracker.track, reset, frames, boxes)


def batched(torch, ref, spec, config, tokens, batch, steps):
  """The reference network step over ``batch`` uint8 crops, timed."""
  window = torch.from_numpy(hanning_window(spec.grid_side)).float()
  wi = float(config.track.window_influence)
  side = spec.template_size
  with torch.no_grad():
    template = ref.encode_template(torch.zeros(1, 3, side, side))
    text = {}
    if tokens:
      text = ref.encode_text(*(torch.from_numpy(t).long() for t in tokens))
  expand = lambda v: v.expand(batch, *v.shape[1:])
  tb = {k: expand(v) if v.dim() == 3 else v for k, v in template.items()}
  xb = {k: expand(v) for k, v in text.items()}
  crops = np.random.default_rng(0).integers(
      0, 255, (batch, spec.search_size, spec.search_size, 3), dtype=np.uint8
  )

  @torch.no_grad()
  def step():
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    o = ref.track(x, tb, xb)
    logits = o['logits']
    p = logits.softmax(-1)[..., 0] if logits.dim() == 3 else logits.sigmoid()
    best = (p * (1 - wi) + window * wi).argmax(-1)
    return o['boxes'][torch.arange(batch), best].numpy()

  return timing.first_call_s(step), timing.loop_rate(step, batch, steps)
