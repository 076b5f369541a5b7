"""Request bodies sent by others: read within a size, a time and a nesting bound.

The webhook (anyone on the internet can send to it), the API and the dashboard's forms read
their bodies here. Each turns :class:`BodyRefused` into its own kind of answer. What is
bounded, and why:

* **Size**, while reading: a ``Content-Length`` over the limit is refused before a byte of
  the body is read, and a body sent without one (chunked) as soon as the running count
  passes the limit. Reading everything first and measuring afterwards let a 300 MB body
  into memory.
* **Time**: the whole body must arrive within a deadline. A client dripping a byte now and
  then kept its connection (and whatever it had sent) for as long as it liked.
* **Nesting**: ``json.loads`` and the code walking its result recurse once per level, and
  a few thousand ``[`` made a ``RecursionError`` (a 500). :func:`nested_deeper_than`
  measures the depth without parsing, in one pass of the regex engine.
* **A client that goes away** mid-body is no error of ours: :attr:`BodyRefused.client_gone`
  tells the caller to log it at debug level and answer nobody.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from contextlib import aclosing
from itertools import accumulate

from starlette.requests import ClientDisconnect, Request

MAX_JSON_DEPTH = 64  # the octokit examples of GitHub's payloads nest 7 levels at most
CLIENT_GONE = 499  # nginx's "client closed request": logged, never sent to anyone

# Everything between the brackets that count towards the depth: whole strings (escapes
# included; an unterminated one runs to the end, as a parser would read it) and other
# characters. The repeats are possessive and the alternatives start with different
# characters, so the engine never backtracks: one match per stretch between two brackets,
# and no character is looked at twice.
_NOT_BRACKETS = re.compile(rb'(?:"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)|[^\[\]{}"]++)++', re.DOTALL)
# As signed bytes: an opener goes one level deeper (+1), a closer comes back (-1).
_AS_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class BodyRefused(Exception):
    """The body was not read to its end: HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    @property
    def client_gone(self) -> bool:
        return self.status == CLIENT_GONE


def declared_length(request: Request, limit: int) -> int | None:
    """The ``Content-Length`` header, refused when malformed or over ``limit``."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not (declared.isascii() and declared.isdigit()):  # "²".isdigit() is true
        raise BodyRefused(400, "malformed Content-Length header")
    if int(declared) > limit:
        raise BodyRefused(413, f"body larger than {limit} bytes")
    return int(declared)


async def read_body(
    request: Request,
    limit: int,
    timeout_s: float,
    on_chunk: Callable[[bytes, int], None] | None = None,
) -> list[bytes]:
    """The whole body, as the chunks it came in, or :class:`BodyRefused` as soon as it
    cannot be had.

    The chunks are kept as they are: one buffer of the declared size would be zeroed (and
    its pages faulted in) at once, 15-25 ms of the loop for 24 MiB, for a body that may
    never come; one grown chunk by chunk is copied as it grows. ``b"".join`` them once they
    are worth it (the webhook checks the signature first). ``on_chunk(chunk, total)`` sees
    every chunk before it is kept and may raise to stop reading.
    """
    declared_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async with aclosing(request.stream()) as stream:
                async for chunk in stream:
                    total = size + len(chunk)
                    if total > limit:
                        raise BodyRefused(413, f"body larger than {limit} bytes")
                    if on_chunk is not None:
                        on_chunk(chunk, total)
                    if chunk:
                        chunks.append(chunk)
                    size = total
    except TimeoutError:
        raise BodyRefused(408, f"the body did not arrive within {timeout_s:g} s") from None
    except ClientDisconnect:
        raise BodyRefused(CLIENT_GONE, "the client went away before sending the body") from None
    return chunks


def nested_deeper_than(data: bytes | bytearray | str, bound: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``data`` nests arrays and objects more than ``bound`` deep.

    Exact for valid JSON (invalid JSON is refused by the parser whatever this says), and
    linear in the input, at the regex engine's and ``accumulate``'s C speed: one pass leaves
    only the brackets outside strings, a running sum of +1/-1 gives the depth at each.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= bound:  # most bodies stop here
        return False
    steps = _NOT_BRACKETS.sub(b"", raw).translate(_AS_STEPS)
    if steps.count(1) <= bound:  # the others were inside strings
        return False
    return max(accumulate(memoryview(steps).cast("b"))) > bound
