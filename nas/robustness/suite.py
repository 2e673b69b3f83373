"""What a robustness suite measures, and the one-line grammar that names it.

Grammar (whitespace and case ignored)::

    suite  := "default" | "full" | "none" | group (";" group)*
    group  := kind [":" level ("," level)*]        # no levels: the kind's default levels

Kinds and their levels (`kind` or its long name is accepted):

| kind        | long name       | level                                   | default levels |
|-------------|-----------------|-----------------------------------------|----------------|
| gaussian    | gaussian_noise  | noise sigma, [0,1] pixel units, 0..1    | 0.04, 0.08     |
| lowfreq     | low_freq_noise  | noise std (RMS) below the cutoff, 0..1  | 0.08           |
| highfreq    | high_freq_noise | noise std (RMS) above the cutoff, 0..1  | 0.08           |
| blur        | gaussian_blur   | severity 1..5 (see corruptions.py)      | 3              |
| contrast, brightness, pixelate, jpeg, fog (same names)  | severity 1..5 | 3              |
| shot        | shot_noise      | severity 1..5                           | 3              |
| impulse     | impulse_noise   | severity 1..5                           | 3              |
| corruptions | -               | severity 1..5, for all eight above      | 3              |
| fgsm        | -               | L-inf epsilon in 1/255 units, 0..255    | 1              |
| pgd         | -               | L-inf epsilon in 1/255 units, 0..255    | 2              |
| patch       | -               | patch area as a fraction of the image   | 0.1            |

Example: ``gaussian:0.04,0.08;fgsm:1,2;pgd:2;jpeg:3;patch:0.1``. A repeated part is measured once. Component
names are ``<long name>@<level>``, e.g. ``gaussian_noise@0.04``, ``jpeg@3``, ``pgd@2``, ``patch@0.1``. The
low/high band boundary is at half the Nyquist frequency (radius, see frequency.py).

Named suites:
- ``default`` = ``gaussian:0.04,0.08;lowfreq:0.08;highfreq:0.08;blur:3;contrast:3;jpeg:3;fgsm:1`` (cheap: with the
  clean pass, nine forward passes and one backward pass over the images);
- ``full`` = every kind: gaussian at the five CIFAR-10-C sigmas, both frequency bands at 0.04 and 0.08, all eight
  corruptions at severities 1..5, FGSM and PGD at 1, 2, 4, 8 / 255, patches of 5 % and 10 % area;
- ``none`` = no parts; the robustness score is then the clean accuracy (a defined number keeps a search's
  objective valid).

Attack settings are fields of `Suite`: PGD takes `pgd_steps` steps of `pgd_step_factor * eps / pgd_steps`
(Madry et al.'s 2.5 eps / steps); the patch takes `patch_steps` signed-gradient steps of `patch_step_size`; the
band boundary is `frequency_cutoff`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitnas.errors import UserError

from .corruptions import CORRUPTIONS


@dataclass(frozen=True)
class PartKind:
    """One family member the grammar can name, with what its level means."""

    token: str
    label: str  # prefix of the component name, e.g. "gaussian_noise" in "gaussian_noise@0.04"
    meaning: str
    low: float
    high: float
    integer: bool
    default_levels: tuple[float, ...]


_SEVERITY = "severity 1..5"
KINDS: tuple[PartKind, ...] = (
    PartKind("gaussian", "gaussian_noise", "noise sigma in 0..1", 0.0, 1.0, False, (0.04, 0.08)),
    PartKind("lowfreq", "low_freq_noise", "noise std in 0..1", 0.0, 1.0, False, (0.08,)),
    PartKind("highfreq", "high_freq_noise", "noise std in 0..1", 0.0, 1.0, False, (0.08,)),
    PartKind("blur", "gaussian_blur", _SEVERITY, 1, 5, True, (3,)),
    PartKind("contrast", "contrast", _SEVERITY, 1, 5, True, (3,)),
    PartKind("brightness", "brightness", _SEVERITY, 1, 5, True, (3,)),
    PartKind("shot", "shot_noise", _SEVERITY, 1, 5, True, (3,)),
    PartKind("impulse", "impulse_noise", _SEVERITY, 1, 5, True, (3,)),
    PartKind("pixelate", "pixelate", _SEVERITY, 1, 5, True, (3,)),
    PartKind("jpeg", "jpeg", _SEVERITY, 1, 5, True, (3,)),
    PartKind("fog", "fog", _SEVERITY, 1, 5, True, (3,)),
    PartKind("fgsm", "fgsm", "epsilon in 1/255 units, 0..255", 0.0, 255.0, False, (1,)),
    PartKind("pgd", "pgd", "epsilon in 1/255 units, 0..255", 0.0, 255.0, False, (2,)),
    PartKind("patch", "patch", "patch area fraction, above 0 and at most 1", 0.0, 1.0, False, (0.1,)),
)
_KIND_BY_NAME = {name: kind for kind in KINDS for name in (kind.token, kind.label)}
_ALL_CORRUPTIONS = "corruptions"

NAMED_SUITES = {
    "default": "gaussian:0.04,0.08;lowfreq:0.08;highfreq:0.08;blur:3;contrast:3;jpeg:3;fgsm:1",
    "full": (
        "gaussian:0.04,0.06,0.08,0.09,0.1;lowfreq:0.04,0.08;highfreq:0.04,0.08;corruptions:1,2,3,4,5;"
        "fgsm:1,2,4,8;pgd:1,2,4,8;patch:0.05,0.1"
    ),
    "none": "",
}


@dataclass(frozen=True)
class Part:
    """One measurement: a kind (its long name, e.g. "jpeg") at one level (sigma, severity, epsilon or area)."""

    kind: str
    level: float

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.level:g}"


@dataclass(frozen=True)
class Suite:
    """The parts to measure, in order, and the attack settings they share."""

    parts: tuple[Part, ...]
    spec: str = ""
    pgd_steps: int = 10
    pgd_step_factor: float = 2.5
    patch_steps: int = 50
    patch_step_size: float = 0.05
    frequency_cutoff: float = 0.5

    def forward_images(self, images: int, batch_size: int) -> int:
        """Forward passes (one image each; a backward pass counts as two) that measuring `images` images takes: the
        clean pass, one pass per part, an input gradient per image for FGSM and per step for PGD, and the patch's
        fitting steps on one batch. A time budget reserves their time (nas/trainer.py)."""
        gradient = 3
        total = images * (1 + len(self.parts))
        for part in self.parts:
            if part.kind == "fgsm":
                total += gradient * images
            elif part.kind == "pgd":
                total += gradient * self.pgd_steps * images
            elif part.kind == "patch":
                total += gradient * self.patch_steps * min(batch_size, images)
        return total


def _allowed_kinds() -> str:
    return ", ".join([kind.token for kind in KINDS] + [_ALL_CORRUPTIONS])


def _parse_level(text: str, kind: PartKind, group: str) -> float:
    try:
        level = float(text)
    except ValueError:
        level = float("nan")
    in_range = kind.low <= level <= kind.high and not (kind.token == "patch" and level == 0)
    if not in_range or (kind.integer and level != int(level)):
        raise UserError(f"robustness suite: bad level {text!r} in {group!r}: {kind.token} takes {kind.meaning}")
    return float(level)


def _parse_group(group: str) -> list[Part]:
    name, colon, levels_text = group.partition(":")
    if name == _ALL_CORRUPTIONS:
        kinds = [_KIND_BY_NAME[label] for label in CORRUPTIONS]
    elif name in _KIND_BY_NAME:
        kinds = [_KIND_BY_NAME[name]]
    else:
        raise UserError(
            f"robustness suite: unknown part {name!r} in {group!r}; allowed: {_allowed_kinds()} "
            f"(e.g. gaussian:0.04,0.08;fgsm:1), or one of {', '.join(NAMED_SUITES)}"
        )
    parts = []
    for kind in kinds:
        texts = levels_text.split(",") if colon else [f"{level:g}" for level in kind.default_levels]
        parts.extend(Part(kind.label, _parse_level(text, kind, group)) for text in texts)
    return parts


def parse_suite(spec: str) -> Suite:
    """Parse a named suite or an explicit list (grammar above); a bad token raises UserError naming it."""
    compact = "".join(spec.split()).lower()
    if not compact:
        raise UserError("robustness suite: empty spec; use default, full, none or a list like gaussian:0.04;fgsm:1")
    body = NAMED_SUITES.get(compact, compact)
    parts: dict[str, Part] = {}
    for group in body.split(";"):
        if group:
            for part in _parse_group(group):
                parts.setdefault(part.name, part)
    return Suite(parts=tuple(parts.values()), spec=compact)
