"""The "Python 3 (crac)" kernel driven by jupyter_client as a notebook server drives it: cells,
heartbeat, interrupt, restart and shutdown, with the relay in between."""

from __future__ import annotations

import time

from conftest import alive, children_of


def after_error(s, code: str) -> str:
    """Runs code after a cell that failed: ipykernel aborts requests that reach it while it is
    still clearing its queue after an error (stop_on_error), as it does without the relay."""
    for _ in range(10):
        content, text, _ = s.run(code)
        if content["status"] != "aborted":
            assert content["status"] == "ok", text
            return text
        time.sleep(0.2)
    raise AssertionError(f"{code!r} was aborted ten times")


def test_cells_run_and_heartbeats_are_answered(session):
    s = session()
    assert "42" in s.ok("x = 41 + 1\nprint(x)")
    content, text, _ = s.run("x + 1")
    assert content["status"] == "ok" and "43" in text
    assert content["execution_count"] == 2
    assert s.kc.hb_channel.is_beating()
    content, text, _ = s.run("1 / 0")
    assert content["status"] == "error" and content["ename"] == "ZeroDivisionError"


def test_the_kernel_runs_under_crac_with_the_servers_python(session):
    import sys

    s = session()
    text = s.ok("import os, sys\nprint(sys.executable)\nprint(os.getppid())\n%crac status")
    lines = text.splitlines()
    assert lines[0] == sys.executable
    # The inner kernel is the relay's child, and crac's agent answers in it.
    assert int(lines[1]) == s.relay_pid
    assert "running under crac" in text and "NOT" not in text
    assert f"relay pid {s.relay_pid}" in text


def test_input_requests_reach_the_client(session):
    s = session()
    s.kc.execute("name = input('who? ')\nprint('hello', name)", allow_stdin=True)
    msg = s.kc.get_stdin_msg(timeout=30)
    assert msg["content"]["prompt"] == "who? "
    s.kc.input("crac")
    assert "hello crac" in s.ok("print('hello', name)")


def test_interrupt_stops_a_sleeping_cell_and_the_kernel_goes_on(session):
    s = session()
    s.ok("import time")
    msg_id = s.kc.execute("time.sleep(100)")
    time.sleep(2)
    s.km.interrupt_kernel()
    reply = s.kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert "still here" in after_error(s, "print('still here')")


def test_restart_gives_a_fresh_kernel_and_shutdown_ends_both_processes(session):
    s = session()
    s.ok("x = 1")
    old_relay = s.relay_pid
    old_inner = children_of(old_relay)
    assert old_inner, "the relay has no inner kernel"
    s.km.restart_kernel(now=False)
    s.kc.wait_for_ready(timeout=90)
    content, text, _ = s.run("x")
    assert content["status"] == "error" and content["ename"] == "NameError"
    for p in [old_relay, *old_inner]:
        assert not alive(p), f"pid {p} outlived the restart"
    relay = s.relay_pid
    inner = children_of(relay)
    s.km.shutdown_kernel(now=False)
    assert not s.km.is_alive()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in inner) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in [relay, *inner]:
        assert not alive(p), f"pid {p} outlived the shutdown"


def test_interrupt_as_a_message_on_the_control_channel(session, jupyter_home):
    import json

    from conftest import KERNEL_NAME

    spec = json.loads((jupyter_home["data"] / "kernels" / KERNEL_NAME / "kernel.json").read_text())
    spec["interrupt_mode"] = "message"
    variant = jupyter_home["data"] / "kernels" / "python3-crac-message"
    variant.mkdir(exist_ok=True)
    (variant / "kernel.json").write_text(json.dumps(spec))
    s = session("python3-crac-message")
    s.ok("import time")
    msg_id = s.kc.execute("time.sleep(100)")
    time.sleep(2)
    s.km.interrupt_kernel()
    reply = s.kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert "on" in after_error(s, "print('on')")
