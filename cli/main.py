"""The ``artemis`` command. It only composes the sub-commands of the packages; nothing imports it."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(help="Artemis: referential understanding of videos.", no_args_is_help=True)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# Sub-commands are registered below, one line per package.
from cli.eval import eval_app  # noqa: E402

app.add_typer(eval_app, name="eval")
from cli.data import data_app  # noqa: E402

app.add_typer(data_app, name="data")
from cli.chat import chat  # noqa: E402

app.command(name="chat")(chat)
from cli.serve import serve  # noqa: E402

app.command(name="serve")(serve)
from cli.describe import describe_cmd  # noqa: E402

app.command("describe")(describe_cmd)
from cli.convert import convert_cmd  # noqa: E402

app.command("convert")(convert_cmd)
from cli.demo import demo  # noqa: E402

app.command("demo")(demo)
from cli.train import train_app  # noqa: E402

app.add_typer(train_app, name="train")
from cli.init_model import init_model_cmd  # noqa: E402

app.command("init-model")(init_model_cmd)
from cli.workers import workers  # noqa: E402

app.command("workers")(workers)

if __name__ == "__main__":
    app()
