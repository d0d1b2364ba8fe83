"""Torch-free facts about the Embedding-Mixer and Video-Encoder that configs are checked against.

``painformer.models`` imports torch; the workflow's dry runs read the config
without it, so the choices of the models' string options live here and both
``painformer.models.mixer`` and ``painformer.train.config`` read them.
"""

from __future__ import annotations

# ``fourier``: the paper's Perceiver features, frequencies up to ``max_freq / 2`` over positions in
# [-1, 1]; ``nyquist``: the same features with the top frequency at the token grid's Nyquist rate.
POSITION_ENCODINGS = ("fourier", "nyquist")
# ``none``: values as given; ``rms``: each embedding divided by the root mean square of its values.
INPUT_NORMS = ("none", "rms")
# Constructor keywords whose value must be one of a fixed set of names.
MODEL_CHOICES = {"position_encoding": POSITION_ENCODINGS, "input_norm": INPUT_NORMS}
