"""The batching verdict of ``nbship check``: the probe's evidence (``nbship_runtime.batching.probe``) → the
manifest's ``BatchingEntry``, its note saying what was proven or why batching stays off.

Batching is on only when every answer of the batches of 1, 2 and 7 matches the same payload's answer alone,
under parity's rule (``nbship.compare``). It stays off, with the reason as its note, when the probe could not
batch (an input or output of a kind not batched, an output of another length, an error), when a batched answer
differs (the rows depend on each other), without an example, without the parity run, or by
``server.batching: false``.
"""

from __future__ import annotations

import json
from typing import Any

from nbship.compare import same_response
from nbship.runtime.manifest import BatchingEntry
from nbship.spec import ProjectSpec

PROBE_KEY = "nbship_batching_probe"  # the line the self-test prints before its answer (``selftest.PROBE_KEY``)


def probe_in(stdout: str) -> dict[str, Any] | None:
    """The probe's evidence from the self-test's output, or None when it printed none."""
    for line in reversed(stdout.strip().splitlines()[:-1]):
        if line.startswith('{"' + PROBE_KEY):
            try:
                evidence = json.loads(line)[PROBE_KEY]
            except (ValueError, KeyError):
                return None
            return evidence if isinstance(evidence, dict) else None
    return None


def judge(spec: ProjectSpec, evidence: dict[str, Any] | None) -> BatchingEntry:
    """The manifest's batching entry from the probe's evidence: on with what was proven, or off with why.

    Not a finding: a ``predict`` that takes a dict is a fine notebook, only not one whose requests can share a
    call; ``nbship check`` prints the note, ``nbship.json`` keeps it and the service logs it at start-up.
    """
    if not spec.batching_allowed:
        return BatchingEntry(False, "turned off by server.batching: false")
    if spec.example is None:
        return BatchingEntry(False, "not proven: the notebook has no example to run")
    if evidence is None:
        return BatchingEntry(False, "not proven: the parity run reported no batching evidence")
    reason = evidence.get("error") or _difference(evidence)
    if reason is None:
        sizes = tuple(sorted(int(size) for size in evidence["batches"]))
        distinct = len(evidence["singles"])
        return BatchingEntry(True, f"proven on the example and {distinct - 1} variants: batches of "
                                   f"{', '.join(map(str, sizes))} answer as each payload alone", sizes)
    return BatchingEntry(False, f"not batchable: {reason}")


def _difference(evidence: dict[str, Any]) -> str | None:
    singles = evidence["singles"]
    for size, answers in sorted(evidence["batches"].items(), key=lambda item: int(item[0])):
        for position, (index, answer) in enumerate(answers):
            differences = same_response(singles[index], answer, path=f"$[{position}]")
            if differences:
                return (f"in a batch of {size}, item {position} answers differently from the same payload alone "
                        f"({differences[0]}): its rows depend on the others")
    return None
