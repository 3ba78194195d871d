"""Fake credentials for the secret-scanner tests, and the check that no finding leaks one.

The values are made when a test module loads, so that no real-looking key sits in the repository as one string.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from nbship.secrets import SecretHit


def fake_values(seed: int) -> Callable[[str, int], str]:
    """``fake(alphabet, n)``: a random string of ``n`` characters from ``alphabet``, the same sequence for the same
    ``seed``, with upper case, lower case and digits whenever the alphabet has them (as real keys do)."""
    rng = random.Random(seed)
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits)

    def fake(alphabet: str, n: int) -> str:
        wanted = [set(c) & set(alphabet) for c in classes]
        while True:
            value = "".join(rng.choice(alphabet) for _ in range(n))
            if all(set(value) & c for c in wanted if c):
                return value

    return fake


def assert_no_leak(hits: list[SecretHit], value: str) -> None:
    """No field of any hit holds five consecutive characters of the value (the preview stops at four)."""
    fields = " ".join(f"{h.kind} {h.preview} {h.suggested_env}" for h in hits)
    for i in range(len(value) - 4):
        assert value[i:i + 5] not in fields, f"{value[i:i + 5]!r} leaked into {fields!r}"
