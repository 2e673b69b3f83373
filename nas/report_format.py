"""How reports write numbers and configs: significant digits, one-line config summaries, flat keys, strict JSON."""
import json
import math

import numpy as np

CONFIG_SUMMARY_CHARS = 80


def format_number(value) -> str:
    """Four significant digits, which is enough to tell trials apart in a table."""
    return "n/a" if value is None else f"{value:.4g}"


def _architecture_summary(config: dict) -> str:
    """An architecture config in one line: stem/patch | mixer width x depth per stage | block, norm, act, head."""
    stem = config["stem"]
    stages = " > ".join(
        f"{s['mixer']['kind']}{s['mixer'].get('kernel_size') or ''} {s['width']}x{s['depth']}" for s in config["stages"])
    return f"{stem.get('kind')}/p{stem.get('patch_size')} | {stages} | " + ", ".join(
        str(config.get(k)) for k in ("block", "norm", "act", "head") if config.get(k) is not None)


def config_summary(config: dict) -> str:
    """One line describing a config: architecture configs by their shape, others as key=value pairs (name first),
    cut to CONFIG_SUMMARY_CHARS characters."""
    try:
        line = _architecture_summary(config)
    except (KeyError, TypeError, AttributeError):
        items = flatten(config)
        ordered = ([f"name={items.pop('name')}"] if "name" in items else []) + [f"{k}={v}" for k, v in items.items()]
        line = ", ".join(ordered)
    return line if len(line) <= CONFIG_SUMMARY_CHARS else line[:CONFIG_SUMMARY_CHARS - 3] + "..."


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


def json_safe(value):
    """A copy with numpy scalars as Python numbers, tuples as lists, and NaN/inf as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
