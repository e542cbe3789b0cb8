"""``crac jupyter install|uninstall``: the kernelspec it writes, where, and what it refuses."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv

import pytest

from conftest import REPO, crac_bin


def crac_jupyter(*args, data=None, check=True):
    env = dict(os.environ, CRAC_JUPYTER_PYTHONPATH=str(REPO / "python"))
    if data is not None:
        env["JUPYTER_DATA_DIR"] = str(data)
    out = subprocess.run([crac_bin(), "jupyter", *args], env=env, capture_output=True, text=True)
    if check:
        assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory):
    """A venv without ipykernel, and one that sees this Python's packages through a .pth."""
    root = tmp_path_factory.mktemp("venvs")
    bare, full = root / "bare", root / "full"
    venv.create(bare, with_pip=False)
    venv.create(full, with_pip=False)
    (sp,) = (full / "lib").glob("python3*/site-packages")
    (sp / "tools.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return bare, full


def test_install_writes_a_kernelspec_that_runs_the_relay(tmp_path):
    out = crac_jupyter("install", "--python", sys.executable, data=tmp_path)
    spec = json.loads((tmp_path / "kernels" / "python3-crac" / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-m", "crac_jupyter.relay", "-f", "{connection_file}"]
    assert spec["display_name"] == "Python 3 (crac)"
    assert spec["env"]["PYTHONPATH"] == str((REPO / "python").resolve())
    assert os.path.samefile(spec["env"]["CRAC_BIN"], crac_bin())
    assert "Python 3 (crac)" in out.stdout
    crac_jupyter("install", "--name", "other", "--python", sys.executable, data=tmp_path)
    assert (tmp_path / "kernels" / "other" / "kernel.json").is_file()
    crac_jupyter("uninstall", "--name", "other", data=tmp_path)
    assert not (tmp_path / "kernels" / "other").exists()
    assert (tmp_path / "kernels" / "python3-crac" / "kernel.json").is_file()


def test_sys_prefix_installs_into_the_pythons_environment(bare_venv, tmp_path):
    _, full = bare_venv
    python = str(full / "bin" / "python")
    crac_jupyter("install", "--sys-prefix", "--python", python, data=tmp_path)
    spec_file = full / "share" / "jupyter" / "kernels" / "python3-crac" / "kernel.json"
    assert json.loads(spec_file.read_text())["argv"][0] == python
    assert not (tmp_path / "kernels").exists()
    crac_jupyter("uninstall", "--sys-prefix", "--python", python, data=tmp_path)
    assert not spec_file.exists()


def test_a_python_without_ipykernel_is_refused_with_the_remedy(bare_venv, tmp_path):
    bare, _ = bare_venv
    out = crac_jupyter("install", "--python", str(bare / "bin" / "python"), data=tmp_path, check=False)
    assert out.returncode != 0
    assert "cannot import ipykernel" in out.stderr and "pip install ipykernel" in out.stderr
    assert not (tmp_path / "kernels").exists()


def test_uninstall_leaves_kernelspecs_it_did_not_write(tmp_path):
    foreign = tmp_path / "kernels" / "python3-crac"
    foreign.mkdir(parents=True)
    (foreign / "kernel.json").write_text(json.dumps({"argv": ["python", "-m", "ipykernel_launcher"]}))
    out = crac_jupyter("uninstall", data=tmp_path, check=False)
    assert out.returncode != 0 and "was not written by crac jupyter install" in out.stderr
    assert (foreign / "kernel.json").is_file()
    out = crac_jupyter("uninstall", "--name", "absent", data=tmp_path, check=False)
    assert out.returncode != 0 and "there is no kernelspec absent" in out.stderr
    out = crac_jupyter("install", "--name", "../up", "--python", sys.executable, data=tmp_path, check=False)
    assert out.returncode != 0 and "must be letters" in out.stderr
