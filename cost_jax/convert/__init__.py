"""Weight converters between PyTorch files and our variables.

  python -m cost_jax.convert transt   --input=transt.pth --output=OUT.safetensors
  python -m cost_jax.convert bert     --input=BERT_FOLDER --output=...
  python -m cost_jax.convert resnet50 --input=resnet50.pth --output=...
  python -m cost_jax.convert import   --input=REF.safetensors|.pth --output=...
  python -m cost_jax.convert export   --input=OURS.safetensors|ORBAX_DIR --output=...

See checkpoints/README.md. torch is imported only to read .pth/.bin files.
Use `load_converted(path, variables)` to put converted weights into a
freshly initialised model.
"""

from cost_jax.convert.matching import ConversionError
from cost_jax.convert.store import VISUAL_BRANCH, load_converted
from cost_jax.convert.torch_files import WeightFileError

__all__ = [
    'ConversionError',
    'VISUAL_BRANCH',
    'WeightFileError',
    'load_converted',
]
