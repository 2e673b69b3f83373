"""`vitnas space show|sample`: read a search space file and draw configs from it. Parsing and printing only."""
import json

import typer
import yaml
from rich.console import Console
from rich.table import Table

from vitnas.search_spaces.space import load_space

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Show a search space or sample configs from it. "
                       "Costs use MACs (conv, linear, attention matmuls); FLOPs = 2 x MACs.")


@app.command()
def show(
    space: str = typer.Argument("metaformer", help="A shipped space name or a SPACE.yaml path."),
    as_json: bool = typer.Option(False, "--json", help="Print the space as one JSON object."),
) -> None:
    """Show the choices of every dimension of a search space.

    Copy search_spaces/metaformer.yaml and narrow any list to search a smaller space.
    Costs in this tool use MACs (conv, linear, attention matmuls); FLOPs = 2 x MACs.

    Example: vitnas space show metaformer
    """
    data = load_space(space).to_dict()
    if as_json:
        typer.echo(json.dumps(data))
        return
    table = Table(title=f"search space {data['name']}")
    table.add_column("dimension")
    table.add_column("choices")
    for name, choices in data["dimensions"].items():
        table.add_row(name, ", ".join(map(str, choices)) if isinstance(choices, list) else
                      f"{choices['low']} .. {choices['high']}" + (" (log)" if choices["log"] else ""))
    for mixer, limit in data["max_tokens"].items():
        table.add_row(f"max_tokens.{mixer}", str(limit))
    Console().print(table)


@app.command()
def sample(
    space: str = typer.Argument("metaformer", help="A shipped space name or a SPACE.yaml path."),
    n: int = typer.Option(3, "--n", min=1, max=1000, help="How many configs (1 to 1000)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same configs."),
    image_size: int = typer.Option(32, "--image-size", min=1, help="Image side in pixels."),
    in_chans: int = typer.Option(3, "--in-chans", min=1, help="Input channels."),
    num_classes: int = typer.Option(10, "--num-classes", min=1, help="Number of classes."),
) -> None:
    """Print N valid configs drawn at random from a space, as YAML documents.

    Every config fits the given image size, channels and classes; check one with `vitnas arch summary FILE`
    (MACs count conv, linear and attention matmuls; FLOPs = 2 x MACs).

    Example: vitnas space sample metaformer --n 3 --seed 0 --image-size 8 --in-chans 1 --num-classes 10
    """
    configs = load_space(space).sample(n, seed, image_size, in_chans, num_classes)
    typer.echo(yaml.safe_dump_all([c.to_dict() for c in configs], sort_keys=False), nl=False)
