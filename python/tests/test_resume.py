"""Checkpoint, SIGKILL, resume: a notebook's state comes back in a new session and its cells go on
as they would have without the interruption."""

from __future__ import annotations

import os
import subprocess

from conftest import crac_bin

STATE = """
big = {i: i * i for i in range(10**6)}

def squares(n):
    for i in range(n):
        yield i * i

g = squares(10)
first = [next(g) for _ in range(5)]
f = open(PATH, "w")
f.write("flushed before the checkpoint\\n")
f.flush()
f.write("still in the buffer at the checkpoint\\n")

class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm2(self):
        return self.x ** 2 + self.y ** 2

p = Point(3, 4)
print(first)
"""

# Cells that read and continue the state built above.
CONTINUE = [
    "print(len(big), sum(big.values()) % 1000003, big[999999])",
    "print(list(g))",
    "f.write('after\\n'); f.close(); print(open(PATH).read())",
    "print(p.norm2(), type(p).__name__, Point(1, 2).norm2(), first)",
]


def continue_cells(s) -> list[tuple[int, str]]:
    out = []
    for code in CONTINUE:
        content, text, _ = s.run(code)
        assert content["status"] == "ok", f"{code!r} failed: {text}"
        out.append((content["execution_count"], text))
    return out


def test_a_killed_kernel_resumes_in_a_new_session_with_its_state(session, jupyter_home, tmp_path):
    a = session()
    a.ok(f"PATH = {str(tmp_path / 'notes.txt')!r}")
    assert "[0, 1, 4, 9, 16]" in a.ok(STATE)
    content, text, _ = a.run("%crac checkpoint state1")
    assert content["status"] == "ok", text
    image = jupyter_home["images"] / "state1.crac"
    assert f"checkpoint written: {image}" in text
    assert "size" in text and "verified in" in text
    assert image.is_file() and (jupyter_home["images"] / "state1.crac.kernel.json").is_file()
    checkpoint_count = content["execution_count"]
    verify = subprocess.run([crac_bin(), "inspect", "--verify", str(image)], capture_output=True)
    assert verify.returncode == 0, verify.stderr
    # The uninterrupted run: the same cells in the kernel that was checkpointed.
    reference = continue_cells(a)
    assert "state1" in a.ok("%crac list")
    a.kill_all()

    b = session()
    assert "NameError" in b.run("big")[1], "a new session starts with a fresh kernel"
    content, text, _ = b.run("%crac resume state1")
    assert content["status"] == "ok", text
    assert f"resumed from {image}" in text
    assert content["execution_count"] == checkpoint_count
    assert continue_cells(b) == reference
    assert (tmp_path / "notes.txt").read_text() == (
        "flushed before the checkpoint\nstill in the buffer at the checkpoint\nafter\n"
    )


def test_a_resumed_kernel_checkpoints_and_resumes_again(session, jupyter_home):
    a = session()
    a.ok("import os\nn = 1\npid = os.getpid()")
    assert a.run("%crac checkpoint chain1")[0]["status"] == "ok"
    a.kill_all()
    b = session()
    assert b.run("%crac resume chain1")[0]["status"] == "ok"
    b.ok("n += 1")
    content, text, _ = b.run("%crac checkpoint chain2")
    assert content["status"] == "ok", text
    b.kill_all()
    c = session()
    content, text, _ = c.run("%crac resume")  # the newest image: chain2
    assert content["status"] == "ok", text
    assert "chain2.crac" in text
    assert c.ok("print(n, os.getpid() == pid)").split() == ["2", "True"]


def test_a_checkpoint_is_refused_while_the_kernel_has_a_child(session, jupyter_home):
    s = session()
    s.ok("import subprocess\nchild = subprocess.Popen(['sleep', '30'])\nchild_pid = child.pid")
    pid = int(s.ok("print(child_pid)"))
    content, text, _ = s.run("%crac checkpoint withchild")
    assert content["status"] == "error"
    assert "child processes" in text and f"pid {pid}: sleep 30" in text
    assert not (jupyter_home["images"] / "withchild.crac").exists()
    assert f"pid {pid}: sleep 30" in s.ok("%crac status")
    s.ok("child.kill(); child.wait()")
    content, text, _ = s.run("%crac checkpoint withchild")
    assert content["status"] == "ok", text
    assert (jupyter_home["images"] / "withchild.crac").is_file()


def test_resuming_an_unknown_image_says_so_and_the_kernel_goes_on(session, jupyter_home):
    s = session()
    s.ok("x = 5")
    content, text, _ = s.run("%crac resume no-such-image")
    assert content["status"] == "error"
    assert "no image at" in text and "no-such-image.crac" in text
    assert "5" in s.ok("print(x)")
    content, text, _ = s.run("print(1)\n%crac resume x")
    assert content["status"] == "error" and "only line of its cell" in text


def test_bad_names_and_usage_are_explained(session):
    s = session()
    content, text, _ = s.run("%crac checkpoint ../escape")
    assert content["status"] == "error" and "cannot name an image" in text
    assert "%crac checkpoint [NAME]" in s.ok("%crac")


def test_an_image_from_the_checkpoint_signal_resumes_too(session, jupyter_home, monkeypatch):
    import glob
    import signal
    import time

    monkeypatch.setenv("CRAC_JUPYTER_LAUNCH_ARGS", "--ckpt-signal USR1")
    a = session()
    kernel_pid = int(a.ok("import os\nkept = {'a': [1, 2, 3]}\nprint(os.getpid())"))
    pattern = str(jupyter_home["images"] / f"*-{kernel_pid}-*.crac")
    # The scheduler's warning goes to the kernel's process group leader, the relay.
    os.kill(a.relay_pid, signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while not glob.glob(pattern) and time.monotonic() < deadline:
        time.sleep(0.1)
    (image,) = glob.glob(pattern)
    assert "kept" not in a.ok("%crac list") and os.path.basename(image)[:-5] in a.ok("%crac list")
    a.kill_all()
    monkeypatch.delenv("CRAC_JUPYTER_LAUNCH_ARGS")
    b = session()
    content, text, _ = b.run(f"%crac resume {image}")
    assert content["status"] == "ok", text
    assert f"resumed from {image}" in text
    assert b.ok("print(kept['a'][-1] + 1, os.getpid())").split() == ["4", str(kernel_pid)]


def test_a_resume_waits_for_the_cells_queued_before_it(session, jupyter_home):
    s = session()
    s.ok("v = 1")
    assert s.run("%crac checkpoint queued")[0]["status"] == "ok"
    s.ok("v = 2")
    first = s.kc.execute("import time\ntime.sleep(3)\nv = 3")
    second = s.kc.execute("%crac resume queued")
    r1 = s.kc.get_shell_msg(timeout=60)
    r2 = s.kc.get_shell_msg(timeout=120)
    assert r1["parent_header"]["msg_id"] == first and r1["content"]["status"] == "ok"
    assert r2["parent_header"]["msg_id"] == second and r2["content"]["status"] == "ok"
    assert s.ok("print(v)").strip() == "1"


def test_a_kernel_can_start_from_an_image(session, jupyter_home, monkeypatch):
    a = session()
    a.ok("started_from = 'image'")
    assert a.run("%crac checkpoint onstart")[0]["status"] == "ok"
    a.kill_all()
    monkeypatch.setenv("CRAC_JUPYTER_RESUME", "onstart")
    b = session()
    assert b.ok("print(started_from)").strip() == "image"


def test_the_same_image_resumes_twice_in_one_session(session, jupyter_home):
    s = session()
    s.ok("import os\ncounter = 10")
    assert s.run("%crac checkpoint twice")[0]["status"] == "ok"
    for _ in range(2):
        s.ok("counter += 1")
        content, text, _ = s.run("%crac resume twice")
        assert content["status"] == "ok", text
        assert s.ok("print(counter)").strip() == "10"
