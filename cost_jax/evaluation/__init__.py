"""Tracking evaluation: metrics, toolkit-faithful protocols, raw-results I/O and plots.

numpy + matplotlib only (no jax / tensorflow / torch), so results can be scored
on any machine.  ``plots`` is not imported here (it loads matplotlib); import
``cost_jax.evaluation.plots`` when you need figures.
"""

from cost_jax.evaluation import metrics, results_io
from cost_jax.evaluation.protocols import PROTOCOLS, Protocol, get_protocol
from cost_jax.evaluation.scoring import evaluate, evaluate_sequence, score_frames
from cost_jax.evaluation.results_io import (
    ResultsLengthError,
    load_tracker_results,
    read_boxes,
    read_times,
    write_boxes,
    write_times,
)

__all__ = [
    'PROTOCOLS',
    'Protocol',
    'evaluate',
    'evaluate_sequence',
    'get_protocol',
    'score_frames',
    'metrics',
    'results_io',
    'ResultsLengthError',
    'load_tracker_results',
    'read_boxes',
    'read_times',
    'write_boxes',
    'write_times',
]
