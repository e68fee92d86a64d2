"""The real bundled MiniLM: our converter + JAX BERT vs transformers.BertModel.

Layer-averaged features (the paper's F0^l, padded tokens zeroed) on real
descriptions of different lengths (so padding is exercised), within RTOL
of the features' scale.
"""

import numpy as np
import pytest

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')

import jax  # noqa: E402

from configs import cost  # noqa: E402
from cost_jax import convert  # noqa: E402
from cost_jax import text as text_lib  # noqa: E402
from cost_jax.convert import commands  # noqa: E402
from cost_jax.models import factory  # noqa: E402
from torch_reference import parity  # noqa: E402
from tests import tolerances  # noqa: E402

# JAX and torch sum in other orders (tests/tolerances.py): 6 layers of ~5
# contractions each (q/k/v, scores, weighted values, output, 2 FFN), <= 1536
# terms (the FFN); relative to max |reference|.
RTOL = tolerances.reordered(depth=30, length=1536)  # 1.3e-5


pytestmark = pytest.mark.usefixtures('one_torch_thread')


SENTENCES = [
    'the red triangle moving left',
    'a small white drone flying above the trees, partly hidden by branches',
    'person',
    'the second boat from the left, close to the shore, moving slowly towards '
    'the bridge while the camera pans to the right, waves hit the hull and '
    'two seagulls circle above the mast in the grey morning light',
]


def test_minilm_layer_average_matches_transformers(tmp_path):
  folder = text_lib.bundled_minilm_path()
  config = cost.get_config('smoke,grid=visual400')
  config.text.update(max_len=40, num_layers=0)  # All 6 layers, 40 tokens.
  out = str(tmp_path / 'minilm.safetensors')
  report = commands.convert_bert(folder, out, config)
  assert not report.missing and not report.unexpected
  model, spec = factory.create_model(config)
  shapes = factory.variable_shapes(model, spec)
  zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  variables = convert.load_converted(out, zeros)
  # The trainer's path: the HF folder itself, converted in memory.
  direct = convert.load_converted(folder, zeros)
  jax.tree.map(np.testing.assert_array_equal, direct, variables)

  ids, mask = text_lib.Tokenizer(folder, 40).encode_batch(SENTENCES)
  assert mask.sum(1).min() < 10 and mask.sum(1).max() == 40  # pads + truncates
  with jax.default_matmul_precision('highest'):
    ours = jax.jit(
        lambda v, i, m: model.apply(v, i, m, method=model.encode_text)
    )(variables, ids, mask)['features']

  ref = transformers.BertModel.from_pretrained(
      folder, attn_implementation='eager'
  ).eval()
  with torch.no_grad():
    hidden = ref(
        input_ids=torch.from_numpy(ids).long(),
        attention_mask=torch.from_numpy(mask).long(),
        output_hidden_states=True,
    ).hidden_states
  want = torch.stack(hidden[1:]).mean(0) * torch.from_numpy(mask)[..., None]
  assert len(hidden) == 7  # embeddings + 6 layers; F0^l averages the 6.
  _, rel = parity.diff('MiniLM layer average', ours, want)
  assert rel <= RTOL, rel
  assert np.all(np.asarray(ours)[mask == 0] == 0)
