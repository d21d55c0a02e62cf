"""tandem: a small and a large reasoning model solving a problem together, step by step."""

from tandem.signals.tt_rank import tt_decompose, tt_ranks

__version__ = "0.1.0"

__all__ = ["__version__", "tt_decompose", "tt_ranks"]
