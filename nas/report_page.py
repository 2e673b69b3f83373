"""The page machinery every vitnas report shares: one self-contained HTML file of titled sections (text, tables,
charts) that opens offline and can be mailed, with each chart also saved as a PNG beside it for papers.

A `Chart` carries two drawings of one figure: a PNG (matplotlib, always) and, when the optional `report` extra
(plotly) is installed, an interactive plotly figure. An interactive page inlines plotly's JavaScript once (about
4.8 MB: the one library, no network); a static page (plotly missing, or asked for) shows the PNGs and weighs little.

Use (the study report and the ablation report alike):
    sections = [Section("Arms", body=table(headers, rows), charts=(chart,))]
    pngs = write_page(Path("report.html"), html_page("title", sections, lead=["one line", ...]), sections)
Every string from a study goes through html.escape (in `table`, titles, captions, lead lines); `body` and `script`
are trusted HTML and JavaScript built by the caller.
"""
import base64
import importlib.util
import json
from dataclasses import dataclass
from html import escape
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 16px 24px; max-width: 1240px; color: #222; }
h1 { font-size: 22px; margin: 8px 0; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
p, li { font-size: 14px; line-height: 1.45; } .lead li { margin: 2px 0; }
/* a fixed two-column grid: each chart's width is known before plotly draws it (no later reflow to clip it) */
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
figure { margin: 0; min-width: 0; } figure.wide { grid-column: 1 / -1; }
figcaption { font-size: 12px; color: #555; margin: 2px 4px 8px; }
img { border: 1px solid #ddd; max-width: 100%; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { margin: 0; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
code { font-size: 12px; background: #f4f4f4; padding: 1px 4px; }
.notice { padding: 10px 12px; background: #f6f6f6; border: 1px solid #ccc; }
"""
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}


@dataclass(frozen=True)
class Chart:
    """One figure: its caption, a file-name-safe slug (the PNG is PAGE-SLUG.png), the PNG bytes and, for an
    interactive page, the plotly figure (a plotly.graph_objects.Figure; None in a static page)."""

    title: str
    slug: str
    png: bytes
    figure: object | None = None
    caption: str = ""
    wide: bool = False  # the full page width instead of half of it


@dataclass(frozen=True)
class Section:
    title: str
    body: str = ""  # trusted HTML shown above the charts
    charts: tuple[Chart, ...] = ()
    after: str = ""  # trusted HTML shown below the charts


def plotly_installed() -> bool:
    """Whether the optional `report` extra is there (checked without importing plotly)."""
    return importlib.util.find_spec("plotly") is not None


def table(headers: list[str], rows: list[list[str]], numeric: frozenset[int] = frozenset()) -> str:
    """An HTML table of text cells (escaped); columns in `numeric` are right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{escape(cell)}</td>'
                                      for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}\n</table>"


def json_script(element_id: str, data) -> str:
    """Data for the page's script as inert JSON; '<', '>' and '&' escaped so no text can close the element."""
    text = json.dumps(data, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{escape(element_id)}">{text}</script>'


def html_page(title: str, sections: list[Section], lead: list[str] = (), script: str = "", head: str = "",
              tail: str = "") -> str:
    """The whole document. Interactive when any chart carries a plotly figure (plotly's JavaScript inlined once,
    then `script`, which runs after every chart exists); otherwise PNGs only and no script at all. `head` is extra
    CSS, `tail` trusted HTML after the sections."""
    interactive = any(chart.figure is not None for section in sections for chart in section.charts)
    library = f"<script>{_plotly_js()}</script>\n" if interactive else ""
    items = "".join(f"<li>{escape(line)}</li>" for line in lead)
    parts = [f"<h1>{escape(title)}</h1>", f'<ul class="lead">{items}</ul>' if items else ""]
    parts += [_section(section) for section in sections]
    code = f"<script>{script}</script>" if interactive and script else ""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(title)}</title>\n'
            f"<style>{STYLE}{head}</style>\n{library}</head>\n<body>\n" + "\n".join(parts)
            + f"\n{tail}\n{code}\n</body>\n</html>\n")


def write_page(path: Path, page: str, sections: list[Section]) -> list[Path]:
    """The page at `path` and every chart as PATH-STEM-SLUG.png beside it; returns the PNG paths."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for chart in (chart for section in sections for chart in section.charts):
        png = path.with_name(f"{path.stem}-{chart.slug}.png")
        png.write_bytes(chart.png)
        written.append(png)
    path.write_text(page, encoding="utf-8")
    return written


def _section(section: Section) -> str:
    figures = "\n".join(_figure(chart) for chart in section.charts)
    charts = f'<div class="charts">\n{figures}\n</div>' if figures else ""
    return f"<section>\n<h2>{escape(section.title)}</h2>\n{section.body}\n{charts}\n{section.after}\n</section>"


def _figure(chart: Chart) -> str:
    if chart.figure is None:
        drawing = (f'<img alt="{escape(chart.title)}" '
                   f'src="data:image/png;base64,{base64.b64encode(chart.png).decode()}">')
    else:
        import plotly.io

        drawing = plotly.io.to_html(chart.figure, include_plotlyjs=False, full_html=False, div_id=f"chart-{chart.slug}",
                                    config=PLOTLY_CONFIG)
    caption = f"<figcaption>{escape(chart.caption or chart.title)}</figcaption>"
    size = "wide" if chart.wide else ""
    return f'<figure class="{size}" data-chart="{escape(chart.slug)}">{drawing}{caption}</figure>'


def _plotly_js() -> str:
    import plotly.offline

    return plotly.offline.get_plotlyjs()
