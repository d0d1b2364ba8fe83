"""Training and evaluation of Embedding-Mixer experiments, one job per fold."""
