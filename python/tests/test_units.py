"""The relay's pure parts: message signing, names and paths, libzmq's GOT slot."""

from __future__ import annotations

import json
import os

import pytest

from crac_jupyter import inner, paths, relay
from crac_jupyter.wire import DELIM, Message, Signer, WireError, dumps


def frames(signer: Signer, idents=(b"client",)) -> list[bytes]:
    msg = Message(list(idents), dumps({"msg_id": "1", "msg_type": "execute_request"}), b"{}", b"{}",
                  dumps({"code": "1"}), [b"\x00binary"])
    return signer.serialize(msg)


def test_a_message_is_re_signed_for_the_other_side():
    outer, inner = Signer(b"outer-key"), Signer(b"inner-key")
    f = frames(outer)
    msg = outer.parse(f)
    assert msg.idents == [b"client"] and msg.msg_type == "execute_request"
    assert msg.buffers == [b"\x00binary"]
    g = inner.serialize(msg)
    assert inner.parse(g).content_dict() == {"code": "1"}
    with pytest.raises(WireError, match="bad signature"):
        outer.parse(g)


def test_tampered_or_malformed_messages_are_refused():
    s = Signer(b"k")
    f = frames(s)
    i = f.index(DELIM)
    f[i + 5] = dumps({"code": "import os; os.system('x')"})
    with pytest.raises(WireError, match="bad signature"):
        s.parse(f)
    with pytest.raises(WireError, match="delimiter"):
        s.parse([b"a", b"b"])
    with pytest.raises(WireError, match="fewer than four"):
        s.parse([DELIM, b"sig", b"{}"])
    with pytest.raises(WireError, match="not supported"):
        Signer(b"k", "rsa")


def test_an_empty_key_means_unsigned_messages():
    s = Signer(b"")
    f = frames(s)
    assert f[f.index(DELIM) + 1] == b""
    assert s.parse(f).msg_type == "execute_request"


def test_image_names_map_to_files_in_the_image_directory(tmp_path):
    d = str(tmp_path)
    assert paths.image_for_name("run-1", d) == os.path.join(d, "run-1.crac")
    assert paths.image_for_name("run-1.crac", d) == os.path.join(d, "run-1.crac")
    for bad in ("../x", ".hidden", "a b", "", "a/b"):
        with pytest.raises(paths.PathError):
            paths.image_for_name(bad, d)


def test_resolve_takes_the_newest_image_with_a_sidecar(tmp_path):
    d = str(tmp_path)
    with pytest.raises(paths.PathError, match="no kernel image"):
        paths.resolve(None, d)
    for i, name in enumerate(["old", "new", "stray"]):
        p = tmp_path / f"{name}.crac"
        p.write_bytes(b"x")
        os.utime(p, (1000 + i, 1000 + i))
        if name != "stray":
            (tmp_path / f"{name}.crac.kernel.json").write_text("{}")
    assert paths.resolve(None, d) == str(tmp_path / "new.crac")
    assert paths.resolve("old", d) == str(tmp_path / "old.crac")
    with pytest.raises(paths.PathError, match="no image at"):
        paths.resolve("missing", d)
    with pytest.raises(paths.PathError, match="not an image of"):
        paths.resolve(str(tmp_path / "stray.crac"), d)
    # An image the agent named after the kernel's launch pid uses the relay's lineage sidecar.
    (tmp_path / "python-4242-0001.crac").write_bytes(b"x")
    assert paths.sidecar_for(str(tmp_path / "python-4242-0001.crac")) is None
    (tmp_path / ".kernel-4242.json").write_text(json.dumps({"kernel_pid": 4242}))
    assert paths.resolve("python-4242-0001", d) == str(tmp_path / "python-4242-0001.crac")


def test_the_resume_cell_is_recognised_only_alone():
    assert relay.RESUME_CELL.match("%crac resume").group(1) is None
    assert relay.RESUME_CELL.match("  %crac resume nb1 \n").group(1) == "nb1"
    assert relay.RESUME_CELL.match("%crac resume /a/b.crac").group(1) == "/a/b.crac"
    assert relay.RESUME_CELL.match("x = 1\n%crac resume") is None
    assert relay.RESUME_CELL.match("%crac checkpoint") is None


def test_the_checkpoint_signal_is_read_from_the_launch_options():
    import signal

    assert inner.forwarded_signal(["--ckpt-signal", "USR1"]) == signal.SIGUSR1
    assert inner.forwarded_signal(["--interval", "5", "--ckpt-signal=SIGUSR2"]) == signal.SIGUSR2
    assert inner.forwarded_signal(["--ckpt-signal", "10"]) == 10
    assert inner.forwarded_signal(["--interval", "5"]) is None


def test_sidecars_are_readable_by_their_owner_only(tmp_path):
    p = tmp_path / "x.crac.kernel.json"
    paths.write_private_json(str(p), {"connection": {"key": "secret"}})
    assert p.stat().st_mode & 0o777 == 0o600
    assert json.loads(p.read_text())["connection"]["key"] == "secret"
    assert not (tmp_path / "x.crac.kernel.json.tmp").exists()
