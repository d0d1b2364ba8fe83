"""painformer: automatic pain assessment with the PainFormer vision foundation model.

Importing the package registers the PainFormer backbone with timm, so that
``timm.create_model("painformer")`` works after ``import painformer``.
"""

__version__ = "0.1.0"

from painformer import models  # noqa: E402,F401  (registers timm models)
