"""The "Python 3 (crac)" kernel as a user meets it: JupyterLab in a real browser.

A JupyterLab server runs on a free loopback port with a random token, a temporary notebook
directory and a temporary JUPYTER_PATH holding the kernelspecs under test. Headless Chromium
(the distribution's package, never a browser Playwright downloads) is driven through
Playwright's sync API: a notebook is opened from the launcher tile, cells are typed and run with
Shift+Enter, and their outputs are read from the page.

The crac test builds state, checkpoints it with ``%crac checkpoint``, kills the kernel (relay and
inner kernel) with SIGKILL, lets the UI reconnect to the fresh kernel the server starts, resumes
with ``%crac resume`` and reads the old value in a new cell. A screenshot of the page is kept as
a test artifact; its path is printed.

Environment: ``CRAC_BIN`` (the crac executable whose ``crac jupyter install`` writes the
kernelspec; default the cargo target directory's ``debug/crac``), ``CRAC_CHROMIUM`` (the
browser; default ``chromium`` or ``chromium-browser`` on PATH), ``CRAC_TEST_ARTIFACTS`` (the
artifact directory; default ``target/test-artifacts``).
The tests skip only when Chromium or Playwright is missing and cannot be installed, and never
when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60
SLOW_TIMEOUT_S = 180
STOCK_KERNEL = "python3"
STOCK_DISPLAY = "Python 3 (ipykernel)"
CRAC_KERNEL = "python3-crac"
CRAC_DISPLAY = "Python 3 (crac)"


def _unavailable(reason: str) -> None:
    """Skips the test, or fails it where the browser test must run (CI)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser test may not be skipped)")
    pytest.skip(reason)


def _find_chromium() -> str | None:
    explicit = os.environ.get("CRAC_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system Chromium's path, installed by scripts/setup-browser.sh when missing."""
    found = _find_chromium()
    if found:
        return found
    explicit = os.environ.get("CRAC_CHROMIUM")
    if explicit:
        _unavailable(f"CRAC_CHROMIUM={explicit} is not an executable")
    setup = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup-browser.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    found = _find_chromium()
    if not found:
        _unavailable(
            "chromium is missing and scripts/setup-browser.sh could not install it: "
            + setup.stderr.strip()[-400:]
        )
    return found


@pytest.fixture(scope="module")
def browser(chromium: str):
    """Headless Chromium under Playwright, shared by the module's tests."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable(
            f"playwright is not installed for {sys.executable}; scripts/setup.sh installs it"
        )
    with sync_playwright() as pw:
        # Headless Chromium as root refuses to start inside its sandbox.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=args)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path
    log: Path
    kernels: Path
    home: Path
    images: Path

    def api(self, path: str, method: str = "GET"):
        """Calls a REST endpoint of the server and decodes its JSON answer (None when empty)."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self) -> str:
        """The end of the server's log, for failure messages."""
        return self.log.read_text(errors="replace")[-4000:]


def _crac_bin() -> Path:
    """The crac binary under test: CRAC_BIN, else the cargo target directory's debug build."""
    explicit = os.environ.get("CRAC_BIN")
    if explicit:
        path = Path(explicit)
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        path = target / "debug" / "crac"
    if not os.access(path, os.X_OK):
        pytest.fail(f"no crac binary at {path}: build it (cargo build -p crac) or set CRAC_BIN")
    return path


def _install_crac_kernelspec(kernels: Path, home: Path) -> None:
    """Installs the crac kernelspec the way a user does (`crac jupyter install --user`), into a
    private home, and moves it under the server's JUPYTER_PATH."""
    env = dict(os.environ, HOME=str(home), JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"))
    # The kernelspec's PYTHONPATH: this checkout's crac_jupyter, unless told otherwise.
    env.setdefault("CRAC_JUPYTER_PYTHONPATH", str(REPO / "python"))
    done = subprocess.run(
        [str(_crac_bin()), "jupyter", "install", "--user", "--name", CRAC_KERNEL,
         "--python", sys.executable],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"crac jupyter install failed:\n{done.stdout}{done.stderr}"
    specs = list(home.glob(f"**/kernels/{CRAC_KERNEL}/kernel.json"))
    assert len(specs) == 1, f"crac jupyter install wrote {specs} under {home}"
    shutil.copytree(specs[0].parent, kernels / CRAC_KERNEL)


def _write_stock_kernelspec(kernels: Path) -> None:
    """The stock ipykernel's kernelspec, for the harness's own test."""
    stock = kernels / STOCK_KERNEL
    stock.mkdir(parents=True)
    (stock / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": STOCK_DISPLAY,
                "language": "python",
            }
        )
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    """A JupyterLab server on a free loopback port, isolated from the user's Jupyter files."""
    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    jupyter_path = root / "share"
    home = root / "home"
    home.mkdir()
    # The server scans this folder at each request: a test adds its kernelspec when it runs.
    _write_stock_kernelspec(jupyter_path / "kernels")
    env = dict(os.environ)
    env.update(
        JUPYTER_PATH=str(jupyter_path),
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
        IPYTHONDIR=str(root / "ipython"),
        # Checkpoint images, and anything else kept per user, stay in the test's folders.
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local/share"),
        CRAC_JUPYTER_DIR=str(root / "images"),
    )
    # No "get notified about Jupyter news?" toast over the screenshots.
    labconfig = root / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    port = _free_port()
    token = secrets.token_hex(16)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={notebooks}",
        # The only kernelspecs are the ones under test (not the server's own Python's).
        "--KernelSpecManager.ensure_native_kernel=False",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = root / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    instance = Lab(
        url=f"http://127.0.0.1:{port}",
        token=token,
        root=root,
        log=log,
        kernels=jupyter_path / "kernels",
        home=home,
        images=root / "images",
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{instance.log_tail()}")
            try:
                instance.api("/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"jupyter lab did not answer in {TIMEOUT_S} s:\n{instance.log_tail()}"
                    )
                time.sleep(0.5)
        yield instance
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        _kill_leftovers(root / "runtime")


# --- processes, found by scanning /proc ------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _parents() -> dict[int, int]:
    """Every live process's parent pid."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def _descendants(pid: int) -> list[int]:
    parents = _parents()
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _kernel_processes(kernel_id: str) -> tuple[int, list[int]]:
    """The process the server started for a kernel (found by its connection file) and its tree."""
    marker = f"kernel-{kernel_id}.json"
    parents = _parents()
    holders = {pid for pid in parents if marker in _cmdline(pid)}
    tops = [pid for pid in holders if parents.get(pid) not in holders]
    assert len(tops) == 1, f"expected one process holding {marker}, found {sorted(holders)}"
    return tops[0], _descendants(tops[0])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def _kill_leftovers(runtime: Path) -> None:
    """SIGKILLs whatever still holds one of the server's connection files after it stopped."""
    if not runtime.is_dir():
        return
    markers = [path.name for path in runtime.glob("kernel-*.json")]
    for pid in _parents():
        line = _cmdline(pid)
        if any(marker in line for marker in markers):
            for victim in [*_descendants(pid), pid]:
                try:
                    os.kill(victim, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# --- the page --------------------------------------------------------------------------------


def _artifact_dir() -> Path:
    path = Path(os.environ.get("CRAC_TEST_ARTIFACTS", REPO / "target" / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _report(request, line: str) -> None:
    """Prints a line to the terminal even when pytest captures the test's output."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        print(line)


@pytest.fixture
def page(browser, lab: Lab):
    """A fresh page on the lab."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_S * 1000)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_S * 1000)
    yield page
    context.close()
    # Each test's kernels stop with it: the next test's kernel gets the machine to itself.
    for session in lab.api("/api/sessions"):
        lab.api(f"/api/sessions/{session['id']}", method="DELETE")


@contextlib.contextmanager
def _screenshot_on_failure(page, request):
    """Keeps a screenshot of the page when the block raises, then lets the error through."""
    try:
        yield
    except BaseException:
        shot = _artifact_dir() / f"{request.node.name}-failure.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            _report(request, f"browser test: failure screenshot at {shot}")
        except Exception as error:  # noqa: BLE001 - the test's own failure matters more
            _report(request, f"browser test: no failure screenshot ({error})")
        raise


def _open_notebook(page, lab: Lab, display_name: str) -> None:
    """Opens the lab and starts a new notebook from the launcher tile with the kernel's name."""
    from playwright.sync_api import expect

    # `reset`: the launcher, not the tabs the previous test left in the saved workspace.
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    name = re.compile(f"^{re.escape(display_name)}$")
    label = page.locator(".jp-LauncherCard-label", has_text=name)
    tile = page.locator('.jp-LauncherCard[data-category="Notebook"]').filter(has=label)
    tile.click()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    expect(notebook.locator(".jp-Cell").first).to_be_visible()
    # A cell run before the kernel is ready is silently dropped: wait for the status bar's
    # "<kernel> | Idle".
    status = re.compile(rf"{re.escape(display_name)}\s*\|\s*Idle")
    expect(page.locator(".jp-StatusBar-Widget", has_text=status)).to_be_visible(
        timeout=SLOW_TIMEOUT_S * 1000
    )


def _run_cell(page, code: str, timeout_s: int = TIMEOUT_S) -> str:
    """Types code into the notebook's last cell, runs it with Shift+Enter and returns its output."""
    from playwright.sync_api import expect

    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
    # Pinned by index: Shift+Enter on the last cell appends a new one, which `.last` would follow.
    cell = cells.nth(cells.count() - 1)
    _dismiss_dialogs(page)
    expect(cell.locator(".jp-InputPrompt")).not_to_contain_text(re.compile(r"\d|\*"))
    cell.locator(".cm-content").click()
    # insert_text, not typing: no key events, so no bracket auto-closing or completer.
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-InputPrompt")).to_have_text(
        re.compile(r"\[\d+\]:"), timeout=timeout_s * 1000
    )
    return cell.locator(".jp-OutputArea").inner_text()


def _kernel_id(lab: Lab, kernel_name: str) -> str:
    """The id of the one running kernel of a kernelspec, from the server's sessions."""
    ids = [
        session["kernel"]["id"]
        for session in lab.api("/api/sessions")
        if session["kernel"]["name"] == kernel_name
    ]
    assert len(ids) == 1, f"expected one {kernel_name} session, found {ids}"
    return ids[0]


def _kill_kernel(kernel_id: str) -> tuple[int, list[int]]:
    """SIGKILLs the kernel's whole process tree and waits until none of it lives.

    The top process is stopped first, so it cannot react to its children's deaths (or start new
    ones) before its own."""
    top, _ = _kernel_processes(kernel_id)
    os.kill(top, signal.SIGSTOP)
    tree = _descendants(top)
    victims = [*reversed(tree), top]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + TIMEOUT_S
    while any(_alive(pid) for pid in victims):
        assert time.monotonic() < deadline, f"kernel processes {victims} outlived SIGKILL"
        time.sleep(0.1)
    return top, tree


def _await_new_kernel(page, lab: Lab, kernel_id: str, dead: list[int]) -> int:
    """Waits until the server has started a fresh kernel process and the page shows it idle."""
    from playwright.sync_api import expect

    deadline = time.monotonic() + SLOW_TIMEOUT_S
    while True:
        try:
            top, _ = _kernel_processes(kernel_id)
            state = lab.api(f"/api/kernels/{kernel_id}")["execution_state"]
            if top not in dead and state == "idle":
                break
        except AssertionError:
            pass  # between the old process's death and the new one's start
        assert time.monotonic() < deadline, f"no fresh kernel after the kill:\n{lab.log_tail()}"
        time.sleep(0.5)
    idle = page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\|\s*Idle"))
    expect(idle).to_be_visible()
    _dismiss_dialogs(page)
    return top


def _dismiss_dialogs(page) -> None:
    """Acknowledges, as a user would, JupyterLab's dialogs (e.g. "Kernel Restarting")."""
    from playwright.sync_api import expect

    dialogs = page.locator(".jp-Dialog")
    while dialogs.count():
        dialogs.first.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect(dialogs).to_have_count(0)


def _save_screenshot(page, request, name: str) -> Path:
    shot = _artifact_dir() / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0, f"empty screenshot at {shot}"
    _report(request, f"browser test: screenshot at {shot}")
    return shot


# --- the tests -------------------------------------------------------------------------------


def test_stock_kernel_loses_its_state_when_killed(page, lab: Lab, request) -> None:
    """The harness, and the control for the crac test: with the stock kernel a cell runs, the
    kill takes the kernel down, the page reconnects to the fresh kernel the server starts, and
    that kernel no longer knows x."""
    with _screenshot_on_failure(page, request):
        _open_notebook(page, lab, STOCK_DISPLAY)
        output = _run_cell(page, "x = 41 + 1; print(x)")
        assert output.strip() == "42", output
        kernel_id = _kernel_id(lab, STOCK_KERNEL)
        top, tree = _kill_kernel(kernel_id)
        _await_new_kernel(page, lab, kernel_id, [top, *tree])
        output = _run_cell(page, "print(x)")
        assert "NameError" in output, output
    _save_screenshot(page, request, "jupyter-browser-stock.png")


def test_crac_kernel_resumes_after_the_kernel_was_killed(page, lab: Lab, request) -> None:
    """Issue 7's story in a browser: state built in cells, `%crac checkpoint`, the kernel (relay
    and inner kernel) killed with SIGKILL, the page reconnected to a fresh crac kernel,
    `%crac resume`, and the old value printed by a new cell."""
    _install_crac_kernelspec(lab.kernels, lab.home)
    assert CRAC_KERNEL in lab.api("/api/kernelspecs")["kernelspecs"]
    with _screenshot_on_failure(page, request):
        _open_notebook(page, lab, CRAC_DISPLAY)
        output = _run_cell(page, "x = 41 + 1")
        assert output.strip() == "", output
        output = _run_cell(page, "%crac checkpoint nb1", SLOW_TIMEOUT_S)
        image = lab.images / "nb1.crac"
        assert "checkpoint written" in output and str(image) in output, output
        assert image.is_file(), f"{image} is missing after: {output}"
        kernel_id = _kernel_id(lab, CRAC_KERNEL)
        top, tree = _kill_kernel(kernel_id)
        assert tree, f"the crac kernel's relay {top} had no inner kernel below it"
        _await_new_kernel(page, lab, kernel_id, [top, *tree])
        output = _run_cell(page, "%crac resume nb1", SLOW_TIMEOUT_S)
        assert f"resumed from {image}" in output and "Error" not in output, output
        output = _run_cell(page, "print(x)")
        assert output.strip() == "42", output
    _save_screenshot(page, request, "jupyter-browser.png")
