"""painformer: automatic pain assessment with the PainFormer vision foundation model.

After ``import painformer``, ``timm.create_model("painformer")`` (and ``"embedding_mixer"``,
``"video_encoder"``) works: the models register with timm as soon as timm is imported, whether
before or after this package. The top-level package itself imports neither torch nor timm, so
that the command line and the workflow (whose Snakefile imports the configuration code) start
quickly.
"""

import wrapt

__version__ = "0.1.0"


def _register_with_timm(_timm) -> None:
    import importlib

    from painformer.models import TIMM_MODULES

    for module in TIMM_MODULES:  # their @register_model factories run on import
        importlib.import_module(module)


wrapt.register_post_import_hook(_register_with_timm, "timm")
