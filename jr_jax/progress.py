"""One progress meter for ``simulate``, ``sweep`` and ``fit``, on tqdm.

``progress=True`` draws a tqdm bar on stderr; any tqdm-compatible object (``tqdm.auto.tqdm(...)``, a notebook bar,
your own class with ``update(n)``) is driven instead. The first update of a job includes XLA's compilation, so it
is not counted in the rate; a resumed job says so and starts its bar at what was already done.
"""

from __future__ import annotations

import sys


def check_progress(progress) -> bool:
    """Whether ``progress`` asks for a meter (True or a tqdm-compatible object); a TypeError for anything else.
    Called before a job touches its folder."""
    if progress is None or progress is False:
        return False
    if progress is True or callable(getattr(progress, "update", None)):
        return True
    raise TypeError(f"progress must be True, False or a tqdm-compatible object with update(); "
                    f"got {type(progress).__name__}.")


class Progress:
    """Counts ``total`` whole items of work (``unit``: steps, sets), ``done`` of them already finished (a resumed
    job). ``progress``: False/None (silent), True (a tqdm bar) or a tqdm-compatible object (its ``update(n)`` gets
    the counts)."""

    def __init__(self, progress, *, total: int, unit: str, desc: str, done: int = 0):
        self.bar, self.owned, self.counted = None, False, False
        if progress is None or progress is False:
            return
        if done:
            desc = f"{desc} (resumed: {done} of {total} {unit} done)"
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True)
            self.owned = True
        elif check_progress(progress):
            self.bar = progress
            for name, value in (("total", total), ("initial", done), ("n", done)):
                if hasattr(progress, name):
                    setattr(progress, name, value)
            if callable(getattr(progress, "set_description", None)):
                progress.set_description(desc)

    def update(self, n: int, **postfix) -> None:
        """``n`` more units done; ``postfix`` (e.g. ``loss=0.12``) is shown beside the bar."""
        if self.bar is None:
            return
        if postfix and callable(getattr(self.bar, "set_postfix", None)):
            self.bar.set_postfix(postfix, refresh=False)
        if not self.counted and all(hasattr(self.bar, a) for a in ("n", "initial", "last_print_n", "unpause")):
            # the first update compiled the loop: count its work as done before the clock starts
            self.counted = True
            self.bar.n += n
            self.bar.initial += n
            self.bar.last_print_n = self.bar.n
            self.bar.unpause()
            self.bar.refresh()
            return
        self.counted = True
        self.bar.update(n)

    def close(self) -> None:
        if self.owned:
            self.bar.close()
        elif callable(getattr(self.bar, "refresh", None)):
            self.bar.refresh()          # the caller's bar: draw the final count, leave it open

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
