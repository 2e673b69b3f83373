"""Published architectures as config files in presets/ (224x224 RGB, 1000 classes)."""
from pathlib import Path

from vitnas.search_spaces.config import ArchConfig
from vitnas.errors import UserError

PRESET_DIR = Path(__file__).parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> ArchConfig:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"preset: got {name!r}; allowed: {', '.join(preset_names())}")
    return ArchConfig.from_yaml(path)
