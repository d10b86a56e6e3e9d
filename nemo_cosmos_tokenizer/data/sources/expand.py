"""Brace patterns for shard lists: ``shards/{000000..000099}.tar``, ``{a,b}/x.tar`` (WebDataset's notation).

A numeric range keeps the zero padding of its first bound (``{000..010}`` -> ``000`` ... ``010``); ranges and
lists nest and combine left to right, so the expansion's order is the pattern's.
"""

from __future__ import annotations

import re

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def _closing_brace(pattern: str, start: int) -> int:
    depth = 0
    for i in range(start, len(pattern)):
        if pattern[i] == "{":
            depth += 1
        elif pattern[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced '{{' in {pattern!r}")


def _split_top_level(body: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in body:
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current.append(ch)
    parts.append("".join(current))
    return parts


def _alternatives(body: str) -> list[str]:
    match = _RANGE.match(body)
    if match:
        lo, hi = int(match.group(1)), int(match.group(2))
        width = len(match.group(1)) if match.group(1).lstrip("-").startswith("0") else 0
        step = 1 if hi >= lo else -1
        return [str(v).zfill(width) for v in range(lo, hi + step, step)]
    parts = _split_top_level(body)
    if len(parts) == 1:
        return ["{" + body + "}"]  # not a pattern: literal braces
    return [alt for part in parts for alt in expand_braces(part)]


def expand_braces(pattern: str) -> list[str]:
    """All strings a brace pattern stands for, in order; a string without braces is returned as is."""
    start = pattern.find("{")
    if start < 0:
        if "}" in pattern:
            raise ValueError(f"unbalanced '}}' in {pattern!r}")
        return [pattern]
    end = _closing_brace(pattern, start)
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    tails = expand_braces(tail)
    return [head + alt + t for alt in _alternatives(body) for t in tails]


def has_braces(pattern: str) -> bool:
    return "{" in pattern and "}" in pattern
