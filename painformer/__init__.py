"""painformer: automatic pain assessment with the PainFormer vision foundation model.

Importing ``painformer.models`` registers the PainFormer backbone, the Embedding-Mixer and
the Video-Encoder with timm (``timm.create_model("painformer")``). The top-level package
stays free of heavy imports so that the command line and the workflow start quickly.
"""

__version__ = "0.1.0"
