"""`python -m cost_jax.analyze pack`: server submissions, checked against each layout.

The layouts, as the servers document them:

* GOT-10k test server (got10k toolkit ``ExperimentGOT10k.report`` zips
  ``results/GOT-10k/<tracker>/``): at the zip root one folder per test
  sequence, holding ``<seq>_001.txt`` (one ``x,y,w,h`` line per frame,
  comma-separated; ``_002``, ``_003`` for further runs) and
  ``<seq>_time.txt`` (seconds per frame, one comma-separated column per run).
* TrackingNet server: at the zip root one ``<seq>.txt`` per test video,
  one ``x,y,w,h`` line per frame, comma-separated.
"""

import os
import re
import zipfile

import numpy as np
import pytest

from cost_jax import analyze
from cost_jax.evaluation import results_io

GOT10K_MEMBER = re.compile(r"(?P<seq>[^/]+)/(?P=seq)_(\d{3}|time)\.txt")
TRACKINGNET_MEMBER = re.compile(r"[^/]+\.txt")
NUMBER = r"-?\d+(\.\d+)?"
BOX_LINE = re.compile(rf"{NUMBER},{NUMBER},{NUMBER},{NUMBER}")

SEQUENCES = {"GOT-10k_Test_000001": 5, "GOT-10k_Test_000002": 3}


def write_results(folder, lengths, times=True):
  """Our runner's layout: <seq>.txt and <seq>_time.txt."""
  rng = np.random.default_rng(0)
  for name, n in lengths.items():
    boxes = np.column_stack(
        [rng.uniform(0, 100, (n, 2)), rng.uniform(5, 50, (n, 2))]
    )
    results_io.write_boxes(os.path.join(folder, f"{name}.txt"), boxes)
    if times:
      results_io.write_times(
          os.path.join(folder, f"{name}_time.txt"), np.full(n, 0.02)
      )


def write_list(path, lengths):
  with open(path, "w", encoding="utf-8") as f:
    f.writelines(f"{name} {n}\n" for name, n in lengths.items())
  return str(path)


def pack(tmp_path, dataset, results, lengths=SEQUENCES):
  out = str(tmp_path / f"{dataset}.zip")
  argv = [
      "pack",
      f"--dataset={dataset}",
      f"--results={results}",
      f"--out={out}",
      f'--list={write_list(tmp_path / "list.txt", lengths)}',
  ]
  return analyze.main(argv), out


def read_zip(path):
  with zipfile.ZipFile(path) as z:
    return {n: z.read(n).decode() for n in z.namelist()}


def test_got10k_zip_has_the_server_layout(tmp_path):
  results = tmp_path / "cost"
  write_results(str(results), SEQUENCES)
  rc, out = pack(tmp_path, "got10k", results)
  assert rc == 0
  members = read_zip(out)
  assert sorted(members) == sorted(
      f"{s}/{s}_{k}.txt" for s in SEQUENCES for k in ("001", "time")
  )
  for name, text in members.items():
    seq = GOT10K_MEMBER.fullmatch(name).group("seq")
    lines = text.splitlines()
    assert len(lines) == SEQUENCES[seq]
    if name.endswith("_001.txt"):
      assert all(BOX_LINE.fullmatch(line) for line in lines), lines
      np.testing.assert_allclose(
          np.loadtxt(text.splitlines(), delimiter=","),
          results_io.read_boxes(results / f"{seq}.txt"),
          atol=5e-4,
      )
    else:
      assert all(float(line) == pytest.approx(0.02) for line in lines)


def test_got10k_keeps_every_run_of_toolkit_results(tmp_path):
  results = tmp_path / "toolkit"
  for name, n in SEQUENCES.items():
    for run in (1, 2, 3):
      results_io.write_boxes(
          results / name / f"{name}_{run:03d}.txt", np.full((n, 4), run)
      )
    results_io.atomic_write_text(
        results / name / f"{name}_time.txt", "0.1,0.2,0.3\n" * n
    )
  rc, out = pack(tmp_path, "got10k", results)
  members = read_zip(out)
  assert rc == 0 and len(members) == 4 * len(SEQUENCES)
  seq = "GOT-10k_Test_000002"
  assert (
      members[f"{seq}/{seq}_003.txt"].splitlines()[0]
      == "3.000,3.000,3.000,3.000"
  )
  assert (
      members[f"{seq}/{seq}_time.txt"].splitlines()[0]
      == "0.10000000,0.20000000,0.30000000"
  )


def test_trackingnet_zip_is_flat(tmp_path):
  lengths = {"-0hKWvmpxXE_0": 4, "zzb8Y2tE7BU_1": 2}
  results = tmp_path / "cost"
  write_results(str(results), lengths, times=False)
  rc, out = pack(tmp_path, "trackingnet", results, lengths)
  members = read_zip(out)
  assert rc == 0 and sorted(members) == sorted(f"{s}.txt" for s in lengths)
  for name, text in members.items():
    assert TRACKINGNET_MEMBER.fullmatch(name)
    assert len(text.splitlines()) == lengths[name[:-4]]
    assert all(BOX_LINE.fullmatch(line) for line in text.splitlines())


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("missing", "1 of 2 GOT-10k sequences have no results"),
        ("short", "expected 3 lines (one box per frame) but found 2"),
        ("nan", "GOT-10k_Test_000002: non-finite boxes on lines 2"),
        ("no_time", "no GOT-10k_Test_000002_time.txt"),
    ],
)
def test_refuses_what_the_server_would_reject(
    tmp_path, capsys, damage, expected
):
  results = tmp_path / "cost"
  write_results(str(results), SEQUENCES)
  seq = "GOT-10k_Test_000002"
  boxes = results_io.read_boxes(results / f"{seq}.txt")
  if damage == "missing":
    os.unlink(results / f"{seq}.txt")
  elif damage == "short":
    results_io.write_boxes(results / f"{seq}.txt", boxes[:2])
  elif damage == "nan":
    boxes[1, 2] = np.nan
    results_io.write_boxes(results / f"{seq}.txt", boxes)
  else:
    os.unlink(results / f"{seq}_time.txt")
  rc, out = pack(tmp_path, "got10k", results)
  err = capsys.readouterr().err.strip()
  assert rc == 2 and not os.path.exists(out)
  assert (
      err.startswith("error: ")
      and expected in err
      and "Fix: " in err
      and "\n" not in err
  )
  if damage == "missing":
    assert seq in err


def test_pack_needs_a_sequence_list(tmp_path, capsys):
  out = str(tmp_path / "x.zip")
  assert (
      analyze.main(
          ["pack", "--dataset=got10k", f"--results={tmp_path}", f"--out={out}"]
      )
      == 2
  )
  assert "Fix: pass --root" in capsys.readouterr().err
