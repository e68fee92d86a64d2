"""Peak rates of known accelerators, utilisation, and device_check.md.

Peaks are the vendors' dense (no sparsity) figures in TFLOP/s and HBM
bandwidth in TB/s. 'f32' is the rate of an f32 matmul as the run does it:
TF32 where TF32 is allowed (the default of --tf32), plain FP32 otherwise.
"""

from benchmarks.timing import fmt

# (substrings of the lowercase device kind, name, bf16, tf32, fp32, TB/s).
KNOWN_DEVICES = (
    (('h100', 'pcie'), 'H100 PCIe', 756.0, 378.0, 51.2, 2.0),
    (('h100',), 'H100 SXM', 989.4, 494.7, 66.9, 3.35),
    (('h200',), 'H200', 989.4, 494.7, 66.9, 4.8),
    (('a100',), 'A100', 312.0, 156.0, 19.5, 2.0),
    (('v5 lite',), 'TPU v5e', 197.0, None, None, 0.82),
    (('v5e',), 'TPU v5e', 197.0, None, None, 0.82),
    (('v5p',), 'TPU v5p', 459.0, None, None, 2.76),
    (('tpu v5',), 'TPU v5p', 459.0, None, None, 2.76),
    (('tpu v4',), 'TPU v4', 275.0, None, None, 1.2),
)
DTYPES = ('float32', 'bfloat16')
SHORT = {'float32': 'f32', 'bfloat16': 'bf16'}


def peak_for(device_kind, tf32, bf16=None, f32=None, tb_s=None):
  """{'name', 'bf16', 'f32', 'tb_s', 'source'}: flags override the table."""
  kind = (device_kind or '').lower()
  row = next((r for r in KNOWN_DEVICES if all(s in kind for s in r[0])), None)
  peak = {
      'name': device_kind,
      'bf16': None,
      'f32': None,
      'tb_s': None,
      'source': 'unknown device: pass --peak_tflops_bf16/_f32',
  }
  if row:
    peak.update(
        name=row[1],
        bf16=row[2],
        f32=row[3] if tf32 else row[4],
        tb_s=row[5],
        source='table of known devices',
    )
  given = {'bf16': bf16, 'f32': f32, 'tb_s': tb_s}
  if any(v is not None for v in given.values()):
    peak.update(
        {k: v for k, v in given.items() if v is not None},
        source='flags' if not row else 'table, flags override',
    )
  return peak


def _items(report, stage):
  return report['stages'].get(stage, {}).get('items', {})


def _ok(item):
  return item if item and item.get('status') == 'ok' else None


def track_rows(report):
  """{(impl, dtype): {path: item}}, path 'single' or 'batch_<B>'."""
  rows = {}
  for dtype in DTYPES:
    rows[('JAX', dtype)] = {
        k: v
        for k, v in _items(report, f'track_jax_{dtype}').items()
        if k.startswith(('single', 'batch_'))
    }
    rows[('PyTorch', dtype)] = {
        k.split('/', 1)[1]: v
        for k, v in _items(report, 'track_torch').items()
        if k.startswith(dtype + '/')
    }
  return rows


def train_rows(report):
  """{(impl, dtype): item} of the train step at the paper batch."""
  rows = {}
  for dtype in DTYPES:
    rows[('JAX', dtype)] = _items(report, f'train_jax_{dtype}').get(
        'paper_batch'
    )
    rows[('PyTorch', dtype)] = _items(report, 'train_torch').get(dtype)
  return rows


def frame_gflop(report, model):
  item = _ok(_items(report, 'cost').get(model))
  return item['gflop'] if item else None


def pair_gflop(report):
  """XLA's flops of one training pair (the JAX f32 step / its batch)."""
  item = _ok(train_rows(report)[('JAX', 'float32')])
  compiled = (item or {}).get('compiled')
  if not compiled:
    return None
  return compiled['gflop'] * item['devices'] / item['batch']


def utilisation(report):
  """Achieved TFLOP/s (XLA's flop count x rate) over the device's peak."""
  peak, out = report['peak'], []
  settings = report['settings']
  frame = frame_gflop(report, settings['track_model'])
  pair = pair_gflop(report)
  runs = [
      (
          f'track {impl} {SHORT[d]} {path.replace("_", " ")}',
          d,
          item.get('fps'),
          frame,
      )
      for (impl, d), items in track_rows(report).items()
      for path, item in items.items()
      if _ok(item)
  ]
  runs += [
      (
          f'train {impl} {SHORT[d]} batch {item["batch"]}',
          d,
          {'median': item['pairs_s']},
          pair,
      )
      for (impl, d), item in train_rows(report).items()
      if _ok(item)
  ]
  for what, dtype, rate, gflop in runs:
    if not rate or not gflop:
      continue
    achieved = rate['median'] * gflop / 1e3
    top = peak['bf16' if dtype == 'bfloat16' else 'f32']
    out.append(
        {
            'run': what,
            'per_s': rate['median'],
            'gflop_each': gflop,
            'achieved_tflops': achieved,
            'peak_tflops': top,
            'fraction': achieved / top if top else None,
        }
    )
  return out


# --- markdown ---------------------------------------------------------------
def _cell(item, key='fps', scale=1.0, digits=1):
  if not item:
    return ''
  if item.get('status') != 'ok':
    return item.get('status', '')
  return fmt(item[key], scale, digits) if key in item else ''


def _ratio(a, b, key='fps'):
  if _ok(a) and _ok(b) and key in a and key in b:
    return f'{a[key]["median"] / b[key]["median"]:.2f}x'
  return ''


def _mb(value):
  return '' if value is None else f'{value / 1e6:,.0f} MB'


def _peak_mb(item):
  """Device peak of an item, or the host's peak RSS where there is none."""
  item = _ok(item) or {}
  if item.get('device_peak_bytes') is not None:
    return _mb(item['device_peak_bytes'])
  rss = item.get('host_peak_rss_bytes')
  return '' if rss is None else f'{_mb(rss)} (host RSS)'


def _num(value, spec=''):
  return '?' if value is None else format(value, spec)


def parity_md(report):
  lines = [
      '## Parity on the device (f32 with TF32 off on both sides)',
      '',
      'max |diff| of logits / boxes; random weights converted from the '
      'reference by cost_jax.convert; target JAX vs PyTorch <= 1e-3.',
      '',
      '| model | JAX vs PyTorch f32 | JAX bf16 vs f32 | '
      'PyTorch bf16 vs f32 | within 1e-3 |',
      '|---|---:|---:|---:|---|',
  ]
  for model, item in _items(report, 'parity').items():
    if not _ok(item):
      lines.append(
          f'| {model} | {item.get("status")}: '
          f'{item.get("reason", "")} | | | |'
      )
      continue
    cells = [
        f'{item[k]["logits"]:.1e} / {item[k]["boxes"]:.1e}'
        for k in ('jax_vs_torch_f32', 'jax_bf16_vs_f32', 'torch_bf16_vs_f32')
    ]
    ok = max(item['jax_vs_torch_f32'].values()) <= 1e-3
    lines.append(
        f'| {model} | {" | ".join(cells)} | ' f'{"yes" if ok else "**no**"} |'
    )
  return lines


def tracking_md(report):
  rows = track_rows(report)
  paths = sorted(
      {p for items in rows.values() for p in items},
      key=lambda p: (
          p != 'single',
          int(p[6:] or 0) if p.startswith('batch_') else 0,
      ),
  )
  lines = [
      f'## Tracking speed ({report["settings"]["track_model"]}, '
      'frames/s, median [min, max])',
      '',
      'Single stream = Tracker.track on 640x480 frames (crop, copy, '
      'step, readback); batch B = one step over B crops (copy, step, '
      'readback). Compilation excluded (column "compile s", JAX f32).',
      '',
      '| path | JAX f32 | JAX bf16 | PyTorch f32 | PyTorch bf16 | '
      'JAX/PyTorch f32 | JAX/PyTorch bf16 | compile s |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for path in paths:
    get = lambda impl, d: rows[(impl, d)].get(path)
    compile_s = (_ok(get('JAX', 'float32')) or {}).get('compile_s')
    name = 'single stream' if path == 'single' else f'batch {path[6:]}'
    lines.append(
        f'| {name} | '
        + ' | '.join(
            _cell(get(i, d)) for i in ('JAX', 'PyTorch') for d in DTYPES
        )
        + f' | {_ratio(get("JAX", "float32"), get("PyTorch", "float32"))}'
        f' | {_ratio(get("JAX", "bfloat16"), get("PyTorch", "bfloat16"))}'
        f' | {"" if compile_s is None else f"{compile_s:.1f}"} |'
    )
  return lines


def training_md(report):
  rows = train_rows(report)
  lines = [
      f'## Train step ({report["settings"]["train_model"]}, every group '
      'trainable)',
      '',
      '| implementation | batch | ms/step median '
      '[min, max] | pairs/s | compile s | vs PyTorch same dtype |',
      '|---|---:|---:|---:|---:|---:|',
  ]
  for (impl, dtype), item in rows.items():
    label = f'{impl} {SHORT[dtype]}' + (
        ' (AMP)' if impl == 'PyTorch' and dtype == 'bfloat16' else ''
    )
    if not _ok(item):
      if item:
        lines.append(f'| {label} | | {item.get("status")} | | | |')
      continue
    ref = rows[('PyTorch', dtype)] if impl == 'JAX' else None
    ratio = _ratio(ref, item, 'step_s') if ref else ''
    compile_s = item.get('compile_s')
    lines.append(
        f'| {label} | {item["batch"]} | {_cell(item, "step_s", 1e3)}'
        f' | {item["pairs_s"]:.1f} | '
        f'{"" if compile_s is None else f"{compile_s:.1f}"} | '
        f'{ratio} |'
    )
  return lines


def memory_md(report):
  track, train = track_rows(report), train_rows(report)
  xla = lambda item: _mb(
      ((_ok(item) or {}).get('compiled') or {}).get('total_bytes')
  )
  lines = [
      '## Peak device memory',
      '',
      '| what | JAX f32 | JAX bf16 | PyTorch f32 | PyTorch bf16 |',
      '|---|---:|---:|---:|---:|',
  ]
  order = [(i, d) for i in ('JAX', 'PyTorch') for d in DTYPES]
  lines.append(
      '| tracking, B = 1 (process peak) | '
      + ' | '.join(_peak_mb(track[k].get('single')) for k in order)
      + ' |'
  )
  lines.append(
      "| train step, the config's batch (process peak) | "
      + ' | '.join(_peak_mb(train[k]) for k in order)
      + ' |'
  )
  lines.append(
      '| train step, XLA buffer footprint | '
      + ' | '.join(xla(train[k]) if k[0] == 'JAX' else '' for k in order)
      + ' |'
  )
  stage = report['stages'].get('train_max_batch', {})
  if 'predicted' in stage or 'note' in stage:
    lines += [
        '',
        'Largest f32 train batch: predicted '
        f'{_num(stage.get("predicted"))} from XLA\'s memory analysis '
        f'(90 % of {_mb(stage.get("limit_bytes"))}), verified by running'
        f' it: {_num(stage.get("verified"))}; tried '
        f'{stage.get("tried", [])}. {stage.get("note", "")}'.rstrip(),
    ]
  return lines


def utilisation_md(report):
  peak, settings = report['peak'], report['settings']
  lines = [
      '## Utilisation (XLA flop count x rate / device peak)',
      '',
      f'Peak: {peak["name"]}, bf16 {_num(peak["bf16"])}, f32 '
      f'({"TF32" if settings["tf32"] else "FP32"}) {_num(peak["f32"])} '
      f'TFLOP/s, {_num(peak["tb_s"])} TB/s ({peak["source"]}).',
  ]
  for model in settings['models']:
    item = _ok(_items(report, 'cost').get(model))
    if item:
      bound = {
          k: f'{peak[k] * 1e3 / item["gflop"]:,.0f}' if peak[k] else '?'
          for k in ('bf16', 'f32')
      }
      lines.append(
          f'- {model}: {item["gflop"]:.2f} GFLOP and '
          f'{item["mb_accessed"]:,.0f} MB accessed (unfused count) '
          f'per frame; bound at peak: {bound["bf16"]} frames/s bf16, '
          f'{bound["f32"]} f32.'
      )
  compiled = _ok(_items(report, 'track_jax_float32').get('step_b1_compiled'))
  if compiled:
    bound = (
        f'{peak["tb_s"] * 1e6 / compiled["mb_accessed"]:,.0f}'
        if peak['tb_s'] and compiled['mb_accessed']
        else '?'
    )
    lines.append(
        f'- {settings["track_model"]} f32 frame step as compiled '
        f'for this device (B = 1): {compiled["gflop"]:.2f} GFLOP, '
        f'{compiled["mb_accessed"]:,.0f} MB accessed; bandwidth '
        f'bound {bound} frames/s.'
    )
  lines += [
      '',
      '| run | frames or pairs /s | GFLOP each | TFLOP/s | '
      'fraction of peak |',
      '|---|---:|---:|---:|---:|',
  ]
  for u in report.get('utilisation', []):
    frac = '' if u['fraction'] is None else f'{100 * u["fraction"]:.1f} %'
    lines.append(
        f'| {u["run"]} | {u["per_s"]:,.1f} | {u["gflop_each"]:.2f} '
        f'| {u["achieved_tflops"]:.2f} | {frac} |'
    )
  return lines


def stages_md(report):
  lines = [
      '## Stages',
      '',
      '| stage | status | wall s | note |',
      '|---|---|---:|---|',
  ]
  for name, stage in report['stages'].items():
    bad = [
        f'{k}: {v["status"]}'
        for k, v in stage.get('items', {}).items()
        if v.get('status') != 'ok'
    ]
    note = '; '.join(filter(None, [stage.get('reason', '')] + bad))
    lines.append(
        f'| {name} | {stage["status"]} | '
        f'{stage.get("wall_s", 0):.0f} | {note[:200]} |'
    )
  return lines


def markdown(report):
  m = report.get('machine') or {}
  head = [
      f'# Device check: {m.get("device_kind", "?")} '
      f'({m.get("platform", "?")}) x {m.get("device_count", "?")}',
      '',
      f'    {report["command"]}',
      '',
      f'{report["created_utc"]}; wall {report["wall_s"]:.0f} s of a '
      f'{report["budget_s"]:.0f} s budget. jax {m.get("jax")}, torch '
      f'{m.get("torch")} on {m.get("torch_device")}, python '
      f'{m.get("python")}, {m.get("cpu_count")} CPUs. f32 speed with '
      f'TF32 {"allowed" if report["settings"]["tf32"] else "off"} on both '
      'sides; PyTorch bf16 = autocast.',
  ]
  for note in report.get('notes', []):
    head += ['', f'**{note}**']
  sections = [
      parity_md,
      tracking_md,
      memory_md,
      training_md,
      utilisation_md,
      stages_md,
  ]
  lines = head
  for section in sections:
    lines += [''] + section(report)
  return '\n'.join(lines) + '\n'
