"""The `jobqueue` console script: the image's entrypoint, so PID 1 of every container.

The kernel does not deliver a signal whose action is the default to a namespace's PID 1, so a
SIGTERM that came while the command was still importing (seconds, on a busy node) was lost: a
worker pod scaled down as it started kept running until the kubelet's SIGKILL, a whole grace
period later. Found on the real node (tests/containers). The first thing the process does is
handle SIGTERM, by exiting 143 as the default action would; every service command replaces the
handler with its own (drain, then exit 0) before it takes any work. Python imports the
`jobqueue` package before this module, so the package loads its names lazily
(tests/unit/test_entry_imports.py): when it imported the worker's modules first, the kind
suite's pods still lost SIGTERMs at start-up.

A bare `jobqueue worker` (a worker pod's command) takes the lean path, jobqueue.worker_command,
which imports neither typer nor Rich nor any other command: a cold start's imports are seconds
between a burst and its first job.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _terminated(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    if sys.argv[1:] == ["worker"]:
        from jobqueue.worker_command import main as worker_main

        sys.exit(worker_main())
    from jobqueue.cli import main as cli_main  # the heavy imports, after the handler

    cli_main()


def kubectl_main() -> None:
    """`kubectl jobqueue`: the plugin, which needs the controller extra."""
    from importlib.util import find_spec

    if find_spec("kubernetes_asyncio") is None:
        from jobqueue.cli_common import print_error
        from worker.errors import MissingExtra

        print_error(str(MissingExtra("`kubectl jobqueue`", "controller")))
        sys.exit(1)
    from controller.kubectl_plugin import main as plugin_main

    plugin_main()
