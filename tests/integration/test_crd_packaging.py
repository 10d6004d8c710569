"""The CRDs travel as package data: a built wheel, installed outside the source tree, loads them.

The embedded API server and the installer read the CRDs through ``importlib.resources``
(see controlplane/api/crds.py); this builds a real wheel with pip from a copy of the sources,
unpacks it into an empty folder and loads the CRDs from there in a fresh interpreter that
cannot see the source tree (no site customisation, so the editable install is not active).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_wheel_ships_the_crds_and_load_crds_reads_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for pkg in ("controlplane", "installer", "nodeimage"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
                   check=True, cwd=tmp_path, timeout=300)
    (wheel,) = wheels.glob("dvp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    in_tree = len(list((ROOT / "controlplane" / "api" / "crds").glob("*.yaml")))
    assert in_tree >= 13  # DVP's kinds served so far, and the internal ones
    assert sum(n.startswith("controlplane/api/crds/") and n.endswith(".yaml") for n in names) == in_tree

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import json, controlplane.api.crds as m\n"
             "print(json.dumps([m.__file__, sorted(c['spec']['names']['kind'] for c in m.load_crds())]))")
    deps = sysconfig.get_paths()["purelib"]  # PyYAML; -S keeps the editable .pth finder out
    out = subprocess.run([sys.executable, "-S", "-c", probe], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": f"{site}:{deps}"}, timeout=60)
    module_file, kinds = json.loads(out.stdout)
    assert Path(module_file).is_relative_to(site)
    assert len(kinds) == in_tree and "VirtualMachine" in kinds and "InternalVirtualMachineInstance" in kinds
