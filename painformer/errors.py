"""Exceptions the command line reports as a one-line error instead of a traceback."""


class PainformerError(Exception):
    """Base class: bad input or a refused operation, with a message naming the file."""


class InputError(PainformerError):
    """An input file (dataset, store, checkpoint, config) is missing or malformed."""


class CheckpointError(PainformerError):
    """A checkpoint does not fit the architecture it is loaded into."""


class StoreError(PainformerError):
    """An embedding or image store is incomplete, mismatched or corrupt."""
