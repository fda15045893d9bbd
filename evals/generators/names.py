"""Seeded pronounceable names, so that no two draws (and no draw and a committed scenario) share a name
an analyst could have been tuned to."""

from __future__ import annotations

import random
import string

_ONSETS = [
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "b",
    "d",
    "k",
    "m",
    "n",
    "r",
    "t",
    "br",
    "dr",
    "kr",
    "pl",
    "st",
    "tr",
    "sk",
    "gl",
    "th",
    "sh",
    "ch",
]
_VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "u", "ai", "ou", "ea"]
_CODAS = ["", "", "", "n", "r", "l", "s", "k", "m", "x"]
# Words a random name must never be: SQL keywords and names an analyst or a store treats specially.
_RESERVED = frozenset(
    [
        "select",
        "from",
        "where",
        "group",
        "order",
        "by",
        "limit",
        "join",
        "left",
        "right",
        "inner",
        "outer",
        "on",
        "as",
        "and",
        "or",
        "not",
        "null",
        "true",
        "false",
        "case",
        "when",
        "then",
        "else",
        "end",
        "in",
        "is",
        "like",
        "rlike",
        "exists",
        "having",
        "union",
        "all",
        "distinct",
        "over",
        "partition",
        "table",
        "view",
        "with",
        "values",
        "set",
        "update",
        "delete",
        "insert",
        "into",
        "date",
        "time",
        "timestamp",
        "interval",
        "cast",
        "row",
        "rows",
        "range",
        "first",
        "last",
        "asc",
        "desc",
        "filter",
        "transform",
        "size",
        "array",
        "map",
        "struct",
        "value",
        "key",
        "name",
        "state",
        "status",
        "trace",
        "traces",
        "span",
        "spans",
        "tags",
        "request",
        "response",
        "error",
        "errors",
        "model",
        "tool",
        "user",
        "session",
        "metadata",
        "assessment",
        "assessments",
        "feedback",
        "source",
    ]
)


class Namer:
    """Mints names that are unique within one draw and avoid a reserved list."""

    def __init__(self, rng: random.Random, avoid: frozenset[str] = frozenset()) -> None:
        self._rng = rng
        self._used: set[str] = set()
        self._avoid = avoid

    def word(self, syllables: int | None = None) -> str:
        for _ in range(1000):
            count = syllables or self._rng.choice([2, 2, 2, 3])
            parts = [self._rng.choice(_ONSETS) + self._rng.choice(_VOWELS) for _ in range(count)]
            candidate = "".join(parts) + self._rng.choice(_CODAS)
            if candidate not in _RESERVED and candidate not in self._avoid and candidate not in self._used:
                self._used.add(candidate)
                return candidate
        raise RuntimeError("ran out of names")  # pragma: no cover - 25*8 syllables give ample room

    def name(self, parts: int | None = None, sep: str = "_") -> str:
        """One to three words joined by `sep`: a span, tool, tag key or assessment name."""
        count = parts or self._rng.choice([1, 2, 2])
        while True:
            candidate = sep.join(self.word() for _ in range(count))  # fresh words make a fresh name
            if candidate not in self._avoid:
                self._used.add(candidate)
                return candidate

    def model(self) -> str:
        """A chat-model name, e.g. `travo-4-mini`."""
        suffix = self._rng.choice(["", "-mini", "-large", "-chat", "-instruct", "-turbo"])
        while True:
            candidate = f"{self.word(2)}-{self._rng.randrange(1, 9)}{suffix}"
            if candidate not in self._used:
                self._used.add(candidate)
                return candidate


def opaque_id(rng: random.Random, prefix: str) -> str:
    """An id-like value (unique per trace): a high-cardinality decoy, e.g. `kv-8f3a91c2`."""
    return prefix + "-" + "".join(rng.choice(string.hexdigits.lower()[:16]) for _ in range(10))


def id_pattern(rng: random.Random) -> str:
    """The pattern of an identifier-like token: `A` an upper-case letter, `a` a lower-case one, `9` a digit,
    anything else itself; e.g. `AA-9999`, `#99999`, `aa99aa`. Always two digits or more."""
    while True:
        style = rng.randrange(6)
        letters, digits = rng.randrange(1, 4), rng.randrange(2, 7)
        upper = rng.choice("Aa")
        if style == 0:
            pattern = upper * letters + rng.choice("-_/.") + "9" * digits
        elif style == 1:
            pattern = rng.choice("#@") + "9" * (digits + 2)
        elif style == 2:
            pattern = upper * letters + "9" * digits + upper * rng.randrange(1, 3)
        elif style == 3:
            pattern = "9" * digits + rng.choice("-/") + upper * letters
        elif style == 4:
            pattern = "9" * rng.randrange(3, 5) + "-" + "9" * rng.randrange(3, 5) + "-" + "9" * rng.randrange(2, 4)
        else:
            pattern = upper * letters + "9" * digits
        if sum(ch == "9" for ch in pattern) >= 2:
            return pattern


def shape(token: str) -> str:
    """What an analyst sees of a token: letters as `a`, digits as `9`, the rest as is."""
    return "".join("a" if ch.isalpha() else "9" if ch.isdigit() else ch for ch in token)


def token(rng: random.Random, pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "A":
            out.append(rng.choice(string.ascii_uppercase))
        elif ch == "a":
            out.append(rng.choice(string.ascii_lowercase))
        elif ch == "9":
            out.append(rng.choice(string.digits))
        else:
            out.append(ch)
    return "".join(out)
