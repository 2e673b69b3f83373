"""The wheel holds every package folder, under `vitnas.` only (no top-level `cli` or `nas` in site-packages)."""
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_in_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {"vitnas." + ".".join(init.parent.relative_to(ROOT).parts)
               for top in config["package-dir"].values() for init in (ROOT / top).rglob("__init__.py")}
    assert on_disk == listed
    assert all(name.startswith("vitnas.") for name in listed)
