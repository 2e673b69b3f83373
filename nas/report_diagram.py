"""An architecture as a small inline SVG: stem, then one box per stage (colour = token mixer, height = width,
length = depth), then the head, with the block, norm and activation written underneath.

Drawn from the config dict alone (no torch), every text through html.escape since configs are user files.
"""
import math
import zlib
from html import escape

MIXER_COLOURS = {"attention": "#d62728", "pool": "#1f77b4", "mlp": "#ff7f0e", "conv": "#2ca02c",
                 "identity": "#9a9a9a"}
# a mixer kind registered later still gets a stable colour of its own
SPARE_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
SHORT_NAMES = {"attention": "attn", "identity": "id"}
HEIGHT = 92
MIDDLE = 40  # the boxes' common centre line
GAP = 14  # room for the arrow between two boxes


def mixer_colour(kind: str) -> str:
    return MIXER_COLOURS.get(kind) or SPARE_COLOURS[zlib.crc32(kind.encode()) % len(SPARE_COLOURS)]


def legend_html(kinds: list[str]) -> str:
    """One swatch per mixer kind that appears in the diagrams on the page."""
    items = " ".join(f'<span class="swatch" style="background:{mixer_colour(kind)}"></span>{escape(kind)}'
                     for kind in sorted(set(kinds)))
    return f'<p class="legend">Stage colour = token mixer: {items}. Box height = width, length = depth.</p>'


def architecture_svg(config: dict) -> str:
    """The diagram of an architecture config; configs without stages (not architectures) give an empty string."""
    stages = config.get("stages")
    if not isinstance(stages, list) or not stages:
        return ""
    stem = config.get("stem") or {}
    parts = []
    x = 2.0
    x = _box(parts, x, 66, 34, "#f2f2f2", "stem", f"{stem.get('kind', '?')} p{stem.get('patch_size', '?')}",
             f"stem: {stem}")
    for index, stage in enumerate(stages, start=1):
        mixer = stage.get("mixer") or {}
        kind = str(mixer.get("kind", "?"))
        width, depth = stage.get("width", 0), stage.get("depth", 0)
        settings = ", ".join(f"{k}={v}" for k, v in mixer.items() if k != "kind")
        described = f"{kind} mixer ({settings})" if settings else f"{kind} mixer"
        tooltip = f"stage {index}: {described}, width {width}, depth {depth}"
        x = _arrow(parts, x)
        x = _box(parts, x, 44 + 8 * min(_int(depth), 8), _stage_height(_int(width)), mixer_colour(kind),
                 SHORT_NAMES.get(kind, kind), f"{width}x{depth}", tooltip, light_text=True)
    x = _arrow(parts, x)
    x = _box(parts, x, 44, 34, "#f2f2f2", "head", str(config.get("head", "?")), f"head: {config.get('head')}")
    details = " · ".join(f"{name} {config[name]}" for name in ("block", "norm", "act", "mlp_ratio")
                         if config.get(name) is not None)
    parts.append(f'<text x="2" y="{HEIGHT - 4}" font-size="11" fill="#444">{escape(details)}</text>')
    width = max(x + 2, 7 * len(details) + 4)
    summary = escape(f"{len(stages)}-stage architecture: " + ", ".join(
        f"{(s.get('mixer') or {}).get('kind')} {s.get('width')}x{s.get('depth')}" for s in stages))
    return (f'<svg class="arch" role="img" width="{width:.0f}" height="{HEIGHT}" '
            f'viewBox="0 0 {width:.0f} {HEIGHT}" font-family="sans-serif"><title>{summary}</title>'
            + "".join(parts) + "</svg>")


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _stage_height(width: int) -> float:
    """Channels on a log scale: 16 channels are 22 px tall, 512 are 70 px."""
    share = (math.log2(max(width, 16)) - 4) / 5
    return 22 + 48 * min(share, 1.0)


def _box(parts: list[str], x: float, width: float, height: float, fill: str, top: str, bottom: str,
         tooltip: str, light_text: bool = False) -> float:
    """A labelled box centred on the middle line; returns the x after it."""
    ink = "#fff" if light_text else "#222"
    y = MIDDLE - height / 2
    centre = x + width / 2
    parts.append(f'<g><title>{escape(tooltip)}</title>'
                 f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" rx="4" fill="{fill}" '
                 f'stroke="#555" stroke-width="0.8"/>'
                 f'<text x="{centre:.1f}" y="{MIDDLE - 2:.1f}" font-size="11" text-anchor="middle" fill="{ink}">'
                 f'{escape(top)}</text>'
                 f'<text x="{centre:.1f}" y="{MIDDLE + 11:.1f}" font-size="10" text-anchor="middle" fill="{ink}">'
                 f'{escape(bottom)}</text></g>')
    return x + width


def _arrow(parts: list[str], x: float) -> float:
    parts.append(f'<path d="M{x + 2:.1f},{MIDDLE} h{GAP - 6} m-4,-3 l4,3 l-4,3" fill="none" stroke="#555"/>')
    return x + GAP
