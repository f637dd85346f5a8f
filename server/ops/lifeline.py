"""Processes that die with the server: the workers and the embedded Redis must never outlive
the process that started them (a `kill -9` of the server would otherwise leave an orphan that
the next server attaches to and never stops)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
WORKER_NAME = "vitrine-worker"  # a worker's name in ps, top and /proc/<pid>/comm
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux's
    PR_SET_PDEATHSIG: SIGTERM lets Redis flush its append-only file and a worker finish its
    requests). Exits at once if the parent is already gone. Also safe as a `preexec_fn`: the
    libc function is looked up at import, so the child only makes the system call.

    The signal follows the *thread* that started the child: start long-lived children from
    the main thread, not from a thread pool."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def name_process(name: str) -> None:
    """The name `ps -o comm`, `top` and /proc/<pid>/comm show (Linux; at most 15 bytes): forked
    workers would otherwise look exactly like the supervisor."""
    if _libc is not None:
        _libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
