"""Applying a final model (``painformer train --final``) to new, possibly unlabelled recordings."""
