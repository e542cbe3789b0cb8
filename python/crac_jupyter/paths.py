"""Where the kernel's images go, how they are named, and where crac is.

- Images: ``$CRAC_JUPYTER_DIR``, else ``$CRAC_DIR``, else ``$XDG_DATA_HOME/crac/jupyter``
  (``~/.local/share/crac/jupyter``). ``%crac checkpoint NAME`` writes ``NAME.crac`` there.
- Beside each image, ``NAME.crac.kernel.json`` (the sidecar) holds what a relay needs to talk to
  the kernel once it is restarted: the inner connection (ports and key the kernel's sockets are
  bound with), the relay's socket identity, and the id of the request that took the checkpoint.
- Images that ``crac_ckpt PID`` or a checkpoint signal write (``python-LINEAGE-SEQ.crac``) have
  no sidecar of their own; the relay keeps ``.kernel-LINEAGE.json`` (the kernel's launch pid)
  with the same connection for them.
- ``NAME.crac.resumed`` is written by the relay once it is connected to a restarted kernel; the
  restarted kernel waits for it before it answers, so nothing it sends is lost.
- crac itself: ``$CRAC_BIN`` (the ``crac`` executable), else ``crac`` on ``PATH``.
"""

from __future__ import annotations

import json
import os
import re
import shutil

IMAGE_SUFFIX = ".crac"
SIDECAR_SUFFIX = ".kernel.json"
RESUMED_SUFFIX = ".resumed"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


class PathError(ValueError):
    """A name or path that cannot be used, or crac that cannot be found."""


def image_dir(create: bool = True) -> str:
    """The directory images go to (created, mode 0700, when create)."""
    d = os.environ.get("CRAC_JUPYTER_DIR") or os.environ.get("CRAC_DIR")
    if not d:
        data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        d = os.path.join(data, "crac", "jupyter")
    d = os.path.abspath(d)
    if create:
        os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def image_for_name(name: str, directory: str | None = None) -> str:
    """The image path NAME stands for: ``DIR/NAME.crac``."""
    if name.endswith(IMAGE_SUFFIX):
        name = name[: -len(IMAGE_SUFFIX)]
    if not _NAME.match(name):
        raise PathError(
            f"{name!r} cannot name an image: use letters, digits, '.', '_', '+' and '-' "
            "(up to 128, not starting with '.')"
        )
    return os.path.join(directory or image_dir(), name + IMAGE_SUFFIX)


_AGENT_IMAGE = re.compile(r"^.*-(\d+)-\d+\.crac$")


def lineage_sidecar(lineage: int, directory: str | None = None) -> str:
    """The relay's sidecar for the images of the kernel launched as pid lineage."""
    return os.path.join(directory or image_dir(), f".kernel-{lineage}.json")


def sidecar_for(image: str) -> str | None:
    """The sidecar that describes image's kernel: its own, else its lineage's; None if none."""
    own = image + SIDECAR_SUFFIX
    if os.path.isfile(own):
        return own
    m = _AGENT_IMAGE.match(os.path.basename(image))
    if m:
        lin = lineage_sidecar(int(m.group(1)), os.path.dirname(image))
        if os.path.isfile(lin):
            return lin
    return None


def resolve(spec: str | None, directory: str | None = None) -> str:
    """The image that NAME or PATH (or, when None, the newest image with a sidecar) means."""
    d = directory or image_dir()
    if spec is None or spec == "":
        found = list_images(d)
        if not found:
            raise PathError(f"no kernel image in {d}; write one with %crac checkpoint")
        return found[-1]["path"]
    if "/" in spec:
        path = os.path.abspath(os.path.expanduser(spec))
    else:
        path = image_for_name(spec, d)
    if not os.path.isfile(path):
        raise PathError(f"no image at {path} (%crac list shows the images in {d})")
    if sidecar_for(path) is None:
        raise PathError(
            f"{path} has no {os.path.basename(path)}{SIDECAR_SUFFIX} beside it: it is not an "
            "image of a \"Python 3 (crac)\" kernel, so a kernel cannot be reconnected to it"
        )
    return path


def list_images(directory: str | None = None) -> list[dict]:
    """Kernel images (those with a sidecar) in directory, oldest first: name, path, size,
    mtime."""
    d = directory or image_dir()
    out = []
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    for n in names:
        p = os.path.join(d, n)
        if n.endswith(IMAGE_SUFFIX) and sidecar_for(p) is not None:
            try:
                st = os.stat(p)
            except OSError:
                continue
            out.append(
                {"name": n[: -len(IMAGE_SUFFIX)], "path": p, "size": st.st_size, "mtime": st.st_mtime}
            )
    out.sort(key=lambda e: (e["mtime"], e["name"]))
    return out


def crac_bin() -> str:
    """The crac executable."""
    b = os.environ.get("CRAC_BIN")
    if b:
        if not os.access(b, os.X_OK):
            raise PathError(f"CRAC_BIN={b} is not an executable; point it at crac")
        return b
    found = shutil.which("crac")
    if not found:
        raise PathError("crac is not on PATH; install crac (scripts/install.sh) or set CRAC_BIN")
    return found


def write_private_json(path: str, obj) -> None:
    """Writes obj as JSON to path atomically, readable by the owner only (sidecars hold the
    kernel's key)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def human_size(n: int) -> str:
    """n bytes as B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
