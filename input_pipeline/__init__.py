"""Data input for cost-jax: dataset readers, synthetic data, dataset statistics.

The modules `sequence`, `readers`, `synthetic` and `stats` use only numpy, cv2
and the standard library, so the evaluator can import them on machines without
TensorFlow.  Keep this file free of imports.
"""
