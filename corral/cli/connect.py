"""How a command reaches the master: the CLI's :class:`corral.client.Client` and its one-line errors.

Every request of the ``corral`` command goes through ``corral.client`` (one HTTP
path). :func:`client_for` makes the client the CLI config names
(``CORRAL_ADDR``/``CORRAL_TOKEN`` or the config file), answering plain JSON
(``typed=False``: the command starts without pydantic and prints what the API
said); :func:`calling` turns an :class:`ApiError` into one line on stderr,
``corral COMMAND: ...``, and its exit code: 2 for bad input (a refused
request, a bad flag, no address), 1 for the server (unreachable, 5xx). An
unreachable master's line says how to start one (``corral up`` for a whole
local cell, ``corral master`` for the master alone).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, NoReturn

from corral.client.errors import BAD_INPUT, ApiError, one_line


def die(command: str, message: str, code: int = BAD_INPUT) -> NoReturn:
    """One line on stderr, ``corral COMMAND: message``, and exit ``code``."""
    import typer

    typer.echo(f"corral {command}: {one_line(message)}", err=True)
    raise typer.Exit(code)


def client_for(command: str) -> Any:
    """The CLI's client; a missing address or token is one line and exit 2."""
    from corral.cli.config import ClientConfigError, client_ca, client_settings
    from corral.client import Client

    try:
        addr, token = client_settings()
        return Client(addr, token, typed=False, ca=client_ca())
    except ClientConfigError as e:
        die(command, str(e))
    except ApiError as e:
        die(command, e.message, e.code)


@contextmanager
def calling(command: str) -> Iterator[Any]:
    """``with calling("jobs") as client: ...``: the CLI's client, closed afterwards; an ApiError
    inside is one line and its exit code."""
    client = client_for(command)
    try:
        yield client
    except ApiError as e:
        die(command, e.message, e.code)
    finally:
        client.close()


def api(command: str, call: Any) -> Any:
    """``call(client)`` with the CLI's client (see :func:`calling`)."""
    with calling(command) as client:
        return call(client)
