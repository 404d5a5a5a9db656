"""Fail points: named places in the code where a fault-injection test can kill the process.

Off unless `BLANKET_FAILPOINT_DIR` is set (it never is in production). A test arms a point by
creating the file `<dir>/<name>`; the first process to reach the point takes the file (an
atomic rename, so exactly one process fires) and dies at once with SIGKILL: no `finally`, no
clean-up, no acknowledgement, exactly like a machine losing power or the OOM killer. Modelled
on FreeBSD's fail(9) and TiKV's fail-rs, reduced to the one action the tests need.

A point reached with a `key` (e.g. the payout id) can also be armed for that key only, with
the file `<dir>/<name>@<key>`: a test kills the worker at one chosen payout, not at whichever
comes first.
"""

from __future__ import annotations

import os
import signal


def hit(name: str, key: object = None) -> None:
    directory = os.environ.get("BLANKET_FAILPOINT_DIR")
    if not directory:
        return
    names = [name] if key is None else [name, f"{name}@{key}"]
    for armed in (os.path.join(directory, n) for n in names):
        taken = f"{armed}.fired.{os.getpid()}"
        try:
            os.rename(armed, taken)
        except OSError:
            continue  # not armed, or another process took it
        os.kill(os.getpid(), signal.SIGKILL)
