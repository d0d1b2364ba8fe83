"""Interpretation: attention maps of the PainFormer backbone (paper section VI, Fig. 5)."""

from painformer.interpret.maps import attention_maps, overlay, token_importance

__all__ = ["attention_maps", "overlay", "token_importance"]
