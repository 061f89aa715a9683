"""synth's stream of requests, ``--batch-size`` at a time: records (or errors) out in input order.

Up to ``batch_size`` consecutive good requests are spoken together (`Synthesizer.speak_batch`);
a bad input line ends the batch before it, so it is reported in its place (and ``--strict`` stops
there, as with one request at a time). Each request is first passed to ``check`` (the command's
rule for a record's own "out" file); a `VoxloraError` it raises is that request's result.
"""

from collections.abc import Callable, Iterable, Iterator

from voxlora.errors import VoxloraError
from voxlora.synth.requests import Request


def speak_stream(
    synth, requests: Iterable, batch_size: int = 1, check: Callable[[Request], None] | None = None
) -> Iterator[dict | VoxloraError]:
    """The output record of each request (or the `VoxloraError` it met), in order, lazily."""
    batch: list[Request] = []

    def flush():
        if len(batch) == 1:
            results = [_one(synth, batch[0])]
        else:
            results = [r if isinstance(r, VoxloraError) else r.record for r in synth.speak_batch(batch)]
        batch.clear()
        return results

    for request in requests:
        if not isinstance(request, VoxloraError) and check is not None:
            try:
                check(request)
            except VoxloraError as e:
                request = e
        if isinstance(request, VoxloraError):  # a bad line (or out file): reported in its place
            yield from flush() if batch else []
            yield request
            continue
        batch.append(request)
        if len(batch) >= batch_size:
            yield from flush()
    if batch:
        yield from flush()


def _one(synth, request: Request) -> dict | VoxloraError:
    try:
        return synth.speak(request).record
    except VoxloraError as e:
        return e
