"""How reports write numbers, objectives and configs: significant digits, objectives with the meaning and unit the
metric registry declares, one-line config summaries, flat keys."""
import json

from vitnas.nas.files import json_safe
from vitnas.nas.metrics import METRICS

CONFIG_SUMMARY_CHARS = 80
# The front's final measurements (nas/search/final.py) that front tables show, with their column titles
FINAL_COLUMNS = {"test_accuracy": "test acc", "robustness": "test robustness"}


def format_number(value) -> str:
    """Four significant digits, which is enough to tell trials apart in a table."""
    return "n/a" if value is None else f"{value:.4g}"


def si_number(value: float) -> str:
    """A tick label in SI prefixes (31.4k, 2M), the way plotly labels its own log axes."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{prefix}"
    return f"{value:.3g}"


def describe_objective(objective: dict) -> str:
    """`accuracy (maximize): validation accuracy, 0..1`; a name the registry does not know keeps name and direction."""
    text = f"{objective['name']} ({objective['direction']})"
    metric = METRICS.get(objective["name"])
    return text if metric is None else f"{text}: {metric.meaning}, {metric.unit}"


def axis_label(objective: dict) -> str:
    """`macs (min, MACs)`: the name, which way is better and, when the registry knows it, the unit."""
    metric = METRICS.get(objective["name"])
    arrow = "max" if objective["direction"] == "maximize" else "min"
    return f"{objective['name']} ({arrow}{'' if metric is None else ', ' + metric.unit})"


def _architecture_summary(config: dict) -> str:
    """An architecture config in one line: stem/patch | mixer width x depth per stage | block, norm, act, head."""
    stem = config["stem"]
    stages = " > ".join(
        f"{s['mixer']['kind']}{s['mixer'].get('kernel_size') or ''} {s['width']}x{s['depth']}" for s in config["stages"])
    return f"{stem.get('kind')}/p{stem.get('patch_size')} | {stages} | " + ", ".join(
        str(config.get(k)) for k in ("block", "norm", "act", "head") if config.get(k) is not None)


def config_summary(config: dict, limit: int | None = CONFIG_SUMMARY_CHARS) -> str:
    """One line describing a config: architecture configs by their shape, others as key=value pairs (name first),
    cut to `limit` characters (None: whole, as a hover label shows it)."""
    try:
        line = _architecture_summary(config)
    except (KeyError, TypeError, AttributeError):
        items = flatten(config)
        ordered = ([f"name={items.pop('name')}"] if "name" in items else []) + [f"{k}={v}" for k, v in items.items()]
        line = ", ".join(ordered)
    return line if limit is None or len(line) <= limit else line[:limit - 3] + "..."


def flatten(nested: dict, prefix: str = "") -> dict:
    """Nested dicts as one level of dotted keys; lists become JSON text so each value fits one cell."""
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (list, tuple)):
            flat[f"{prefix}{key}"] = json.dumps(json_safe(value))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
