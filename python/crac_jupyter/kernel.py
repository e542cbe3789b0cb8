"""The inner kernel, run by the relay under ``crac launch``: ``python -m crac_jupyter.kernel -f
CONNECTION_FILE``. It is ipykernel's own kernel with the ``%crac`` magics loaded. IPython's
history lives in memory (``HistoryManager.hist_file=:memory:``): its SQLite file and the journal
SQLite creates and deletes beside it would be open files that a restart cannot find again (and
that another kernel may have changed); in memory the history is in the image with the rest.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Starts ipykernel's IPKernelApp with argv (default: this process's arguments)."""
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    args = sys.argv[1:] if argv is None else argv
    app.initialize(["--HistoryManager.hist_file=:memory:", *args])
    app.shell.extension_manager.load_extension("crac_jupyter")
    app.start()


if __name__ == "__main__":
    main()
