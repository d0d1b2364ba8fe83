"""timm's model registry, joined when timm is imported rather than by importing it.

``register_model`` marks a factory for timm's registry the way ``timm.models.register_model``
does, but a module that uses it does not import timm: the factory is registered as soon as timm is
imported, or at once if it already is. The Mixer's module uses it so that training (which never
needs timm) starts without timm's and torchvision's import time.
"""

from __future__ import annotations

from collections.abc import Callable

import wrapt


def register_model(factory: Callable) -> Callable:
    def register(timm) -> None:
        import timm.models

        timm.models.register_model(factory)

    wrapt.register_post_import_hook(register, "timm")
    return factory
