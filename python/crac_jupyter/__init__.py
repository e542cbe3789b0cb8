"""crac's "Python 3 (crac)" Jupyter kernel.

- ``relay``: the process the Jupyter server starts; it owns the server's five channels and
  passes messages to and from the real ipykernel (``kernel``), re-signed (``wire``).
- ``inner``: that kernel's process: ``crac launch`` on private loopback ports, ``crac restart
  --same-pid`` from an image.
- ``agent``: a checkpoint asked of crac's agent from inside the kernel; ``paths``: image names,
  directories, sidecars.
- ``magics``: ``%crac checkpoint|list|status|resume``, loaded into the inner kernel.
- ``crac jupyter install`` (crac's command line) writes the kernelspec that runs ``relay``.
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """Registers the ``%crac`` magics (``%load_ext crac_jupyter``)."""
    from crac_jupyter.magics import CracMagics

    ipython.register_magics(CracMagics)
