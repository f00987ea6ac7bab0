"""Tiny protocol overrides shared by the end-to-end tests (seconds per run on one core)."""

TINY = dict(search_layers=2, search_channels=4, search_epochs=2, search_batch=32, search_subset=96, k=2,
            eval_layers=2, eval_channels=4, eval_epochs=1, eval_batch=64, eval_subset=128)


def tiny(method: str, **extra):
    """TINY without ``k`` for methods that have no K option."""
    import methods

    out = {**TINY, **extra}
    if "k" not in methods.METHODS[method].option_defaults:
        out.pop("k")
    return out
