"""Child processes that do not outlive the process that started them.

A worker forked or spawned by fvc (DataLoader workers, ``fvc prepare``/``verify`` workers) only ever
serves its parent. If the parent is killed without a word (SIGKILL, the out-of-memory killer, a
scheduler's hard kill) nobody tells the worker to stop: it would keep its CPU, its memory, the files
it inherited open (the run folder's lock) and, for a spawned pool, multiprocessing's resource
tracker alive. ``die_with_parent`` asks the kernel to kill it at once instead (Linux's
``PR_SET_PDEATHSIG``); elsewhere it does nothing and the workers' own checks of their parent apply.
"""

from __future__ import annotations

import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int | None = None, sig: int = signal.SIGKILL) -> bool:
    """Have this process receive ``sig`` as soon as its parent dies; True where the OS does it.

    ``parent`` is the pid the caller expects as its parent: if that one is already gone (it died
    between the fork and this call, so the kernel will never send the signal), ``sig`` is raised
    now. The kernel sends the signal when the *thread* that forked this process ends, which for
    fvc's workers is the parent's main thread.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):  # no prctl in this libc (musl variants, sandboxes)
        return False
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)
    return True
