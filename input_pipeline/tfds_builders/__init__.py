"""TFDS builders for the VL-SOT500 layout (`vlsot500_cost`, `synthetic_vlsot_cost`).

Importing this package registers them with TFDS; see `vlsot.py` for the
features and `reader.py` for how the pair pipeline reads them
(`config.data.source='tfds'`).
"""

from input_pipeline.tfds_builders.vlsot import SyntheticVlsotCost, Vlsot500Cost

__all__ = ['SyntheticVlsotCost', 'Vlsot500Cost']
