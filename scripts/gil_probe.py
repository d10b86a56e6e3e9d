"""Does a call hold the GIL while it works in C/C++? A probe for the reader's library calls (issue 22, run 13:
reading and encoding took turns although they run in separate threads).

:func:`measure` runs an operation over and over in a worker thread while the calling thread runs a loop:

* **ticker**: a tight pure-Python loop noting ``time.perf_counter()`` (no sleeps, no I/O). A worker that releases
  the GIL while it works leaves the ticker running; Python-level work in the worker takes turns with it in slices of
  the switch interval (``sys.getswitchinterval()``, 5 ms by default); a C call that holds the GIL stops the ticker
  for the whole call, since nothing can preempt it. So the ticker's gaps tell: how long a call is covered by one
  gap (``stall_cover``), the longest gap of a call (``stall_per_call_ms``) against the switch interval, and the
  share of the operation's time with no ticker progress for more than ``stall_ms`` (``stalled``);
* **launcher**: the loop body is a caller's function, e.g. a tiny CUDA ``torch.add`` on a side stream: launches per
  second while the operation runs against the same loop with nothing beside it (``launches_of_idle``): the launch
  rate an encoder's thread gets during that operation. Measured at the default switch interval and, where
  ``switch_intervals`` asks, at a shorter one (a Python-level or GIL-releasing worker then gives the GIL back
  sooner; a C call holding the GIL does not care).

Each row also gives the operation's milliseconds per call alone (the calling thread waiting in ``join``) and beside
each loop: a call that releases the GIL and wants it back waits for the busy loop to yield (up to a switch
interval), so it slows down beside it. Only the standard library is imported here.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

#: A ticker gap longer than this counts as the ticker making no progress (the task's 2 ms: well above the loop's
#: sub-microsecond iterations, well below the 5 ms default switch interval).
STALL_MS = 2.0
#: The longest stall of a call, in switch intervals, above which a call is said to hold the GIL (at least in part):
#: Python-level work yields after one switch interval, so its stalls stay near one; 3 leaves room for scheduling
#: noise on a busy machine.
HOLD_SWITCHES = 3.0
#: A call counts as holding the GIL outright when a single ticker stall covers at least this share of it.
HOLD_COVER = 0.6
#: At most this share of the operation's time without ticker progress for "releases it" (allows OS preemption).
RELEASE_STALLED = 0.35
_RECORD_S = 2e-4  # ticker gaps longer than this are kept (shorter ones are the loop itself)


def run_beside(op: Callable[[], Any], loop: str = "ticker", body: Callable[[], Any] | None = None, *,
               seconds: float = 0.5, min_calls: int = 3, max_calls: int = 200,
               settle: Callable[[], Any] | None = None, timeout: float = 120.0) -> dict[str, Any]:
    """``op`` called in a worker thread for ``seconds`` (at least ``min_calls``, at most ``max_calls`` times;
    ``settle`` after each call, outside its timing) while this thread runs ``loop``: ``alone`` (waits in ``join``),
    ``ticker`` or ``launcher`` (calls ``body`` each iteration). Returns the calls' ``(start, end)`` times, the loop's
    gaps longer than 0.2 ms, its iterations during calls, and the worker's error, if any."""
    calls: list[tuple[float, float]] = []
    busy, done, error = [False], [False], []
    go = threading.Event()

    def worker() -> None:
        go.wait()
        until = time.perf_counter() + seconds
        try:
            while len(calls) < max_calls and (len(calls) < min_calls or time.perf_counter() < until):
                busy[0] = True
                start = time.perf_counter()
                op()
                end = time.perf_counter()
                busy[0] = False
                calls.append((start, end))
                if settle is not None:
                    settle()
        except BaseException as err:  # noqa: BLE001 - reported in the row, the probe goes on
            error.append(f"{type(err).__name__}: {err}")
        finally:
            busy[0] = False
            done[0] = True

    thread = threading.Thread(target=worker, name="gil-probe-op", daemon=True)
    thread.start()
    gaps: list[tuple[float, float]] = []
    during = 0
    perf = time.perf_counter
    deadline = perf() + timeout
    go.set()
    if loop == "alone":
        thread.join(timeout)
    elif loop in ("ticker", "launcher"):
        launch = body if loop == "launcher" else None  # the ticker only reads the clock
        last = perf()
        while not done[0]:
            if launch is not None:
                launch()
            now = perf()
            if now - last > _RECORD_S:
                gaps.append((last, now))
            if now > deadline:
                break
            during += busy[0]
            last = now
    else:
        raise ValueError(f"loop must be alone, ticker or launcher, got {loop!r}")
    thread.join(max(0.0, deadline - perf()) + 1.0)
    if thread.is_alive():
        error.append(f"still running after {timeout:.0f} s")
    return {"calls": calls, "gaps": gaps, "during": during, "error": error[0] if error else None}


def stall_stats(calls: Sequence[tuple[float, float]], gaps: Sequence[tuple[float, float]],
                stall_ms: float = STALL_MS) -> dict[str, float]:
    """Ticker stalls (gaps longer than ``stall_ms``) against the calls: the share of the calls' time in stalls, the
    median over calls of the longest stall within a call (ms) and of the share of the call it covers, and the
    longest gap overlapping any call (ms)."""
    big = [(a, b) for a, b in gaps if (b - a) * 1e3 > stall_ms]
    ends = [b for _, b in big]
    total = stalled = longest_gap = 0.0
    per_call, cover = [], []
    for start, end in calls:
        total += end - start
        longest = 0.0
        for a, b in big[bisect_left(ends, start):]:  # gaps ending after the call starts, in order
            if a >= end:
                break
            overlap = min(b, end) - max(a, start)
            if overlap > 0:
                stalled += overlap
                longest = max(longest, overlap)
                longest_gap = max(longest_gap, b - a)
        per_call.append(longest * 1e3)
        cover.append(longest / (end - start) if end > start else 0.0)
    return {"stalled": stalled / total if total else 0.0,
            "stall_per_call_ms": statistics.median(per_call) if per_call else 0.0,
            "stall_cover": statistics.median(cover) if cover else 0.0,
            "longest_gap_ms": longest_gap * 1e3}


def verdict(stats: dict[str, float], switch_s: float | None = None) -> str:
    """"holds the GIL" / "holds it in part" / "releases it" / "shares it" from :func:`stall_stats`."""
    switch_ms = (switch_s if switch_s is not None else sys.getswitchinterval()) * 1e3
    long_stalls = stats["stall_per_call_ms"] >= HOLD_SWITCHES * switch_ms
    if long_stalls and stats["stall_cover"] >= HOLD_COVER:
        return "holds the GIL"
    if long_stalls:
        return f"holds it in part (~{stats['stall_per_call_ms']:.0f} ms a call)"
    if stats["stalled"] <= RELEASE_STALLED:
        return "releases it"
    return "shares it (Python-level work, or holds shorter than the switch interval)"


def _ms_per_call(run: dict[str, Any]) -> float | None:
    calls = run["calls"]
    return sum(b - a for a, b in calls) / len(calls) * 1e3 if calls else None


def idle_rate(body: Callable[[], Any], seconds: float = 0.3) -> float:
    """Iterations per second of the launcher loop with nothing beside it."""
    count, until = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < until:
        body()
        count += 1
    return count / (time.perf_counter() - start)


def measure(name: str, op: Callable[[], Any], body: Callable[[], Any] | None = None, *, seconds: float = 0.5,
            min_calls: int = 3, settle: Callable[[], Any] | None = None,
            switch_intervals: Sequence[float | None] = (None,), idle: dict | None = None,
            sync: Callable[[], Any] | None = None) -> dict[str, Any]:
    """One row: ``op`` once to warm up, then alone, beside the ticker and (with ``body``) beside the launcher at
    each of ``switch_intervals`` (``None``: the current one); ``idle``: launcher loop rates by switch interval
    (:func:`idle_rates`); ``sync`` runs after each launcher measurement (e.g. ``torch.cuda.synchronize``)."""
    row: dict[str, Any] = {"operation": name}
    kw = {"seconds": seconds, "min_calls": min_calls, "settle": settle}
    warm = run_beside(op, "alone", seconds=0.0, min_calls=1, max_calls=1, settle=settle, timeout=60.0)
    if warm["error"]:  # one failing (or hanging) operation does not end the probe
        row["error"] = warm["error"]
        print(f"gil {name}: failed ({row['error']})", flush=True)
        return row
    alone = run_beside(op, "alone", **kw)
    ticker = run_beside(op, "ticker", **kw)
    stats = stall_stats(ticker["calls"], ticker["gaps"])
    row.update(calls=len(ticker["calls"]), alone_ms=_ms_per_call(alone), beside_ticker_ms=_ms_per_call(ticker),
               ticker_longest_gap_ms=stats["longest_gap_ms"], ticker_stalled=stats["stalled"],
               ticker_stall_per_call_ms=stats["stall_per_call_ms"], ticker_stall_cover=stats["stall_cover"],
               switch_interval_ms=sys.getswitchinterval() * 1e3, verdict=verdict(stats))
    errors = [r["error"] for r in (alone, ticker) if r["error"]]
    if body is not None:
        default = sys.getswitchinterval()
        for interval in switch_intervals:
            key = _switch_key(interval)
            sys.setswitchinterval(interval if interval is not None else default)
            try:
                run = run_beside(op, "launcher", body, **kw)
            finally:
                sys.setswitchinterval(default)
                if sync is not None:
                    sync()
            spent = sum(b - a for a, b in run["calls"])
            rate = run["during"] / spent if spent else 0.0
            row[f"beside_launcher_ms{key}"] = _ms_per_call(run)
            row[f"launches_per_s{key}"] = rate
            if idle and idle.get(key):
                row[f"launches_of_idle{key}"] = rate / idle[key]
            if run["error"]:
                errors.append(run["error"])
    if errors:
        row["error"] = errors[0]
    print(f"gil {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in row.items() if k != "operation"), flush=True)
    return row


def _switch_key(interval: float | None) -> str:
    return "" if interval is None else f"_switch_{interval * 1e3:g}ms"


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def idle_rates(body: Callable[[], Any], switch_intervals: Sequence[float | None] = (None,),
               seconds: float = 0.3, sync: Callable[[], Any] | None = None) -> dict[str, float]:
    """:func:`idle_rate` at each switch interval, keyed as :func:`measure`'s columns."""
    out, default = {}, sys.getswitchinterval()
    for interval in switch_intervals:
        sys.setswitchinterval(interval if interval is not None else default)
        try:
            out[_switch_key(interval)] = idle_rate(body, seconds)
        finally:
            sys.setswitchinterval(default)
            if sync is not None:
                sync()
    return out


def reference_operations(call_ms: float = 40.0) -> list[tuple[str, Callable[[], Any]]]:
    """Operations of known behaviour, to read the others against: ``sum(range(n))`` (one C call holding the GIL),
    a pure-Python loop (yields every switch interval), ``hashlib.sha256`` of a large buffer (CPU work in C with the
    GIL released) and ``time.sleep`` (released, no CPU), each about ``call_ms`` long on this machine."""
    start = time.perf_counter()
    sum(range(1_000_000))
    n = max(100_000, int(1_000_000 * call_ms / max(1e-3, (time.perf_counter() - start) * 1e3)))
    data = bytes(1 << 22)
    start = time.perf_counter()
    hashlib.sha256(data).digest()
    repeats = max(1, round(call_ms / max(1e-3, (time.perf_counter() - start) * 1e3)))

    def python_loop() -> None:
        until = time.perf_counter() + call_ms / 1e3
        while time.perf_counter() < until:
            pass

    def hashing() -> None:
        for _ in range(repeats):
            hashlib.sha256(data).digest()

    return [(f"ref: sum(range) in C, {call_ms:.0f} ms (holds)", lambda: sum(range(n))),
            (f"ref: pure-Python loop, {call_ms:.0f} ms (shares)", python_loop),
            (f"ref: hashlib.sha256 of 4 MiB x{repeats} (releases)", hashing),
            (f"ref: time.sleep {call_ms:.0f} ms (releases)", lambda: time.sleep(call_ms / 1e3))]


def format_table(rows: Sequence[dict[str, Any]], idle: dict[str, float] | None = None) -> str:
    """Markdown table of :func:`measure`'s rows (launch columns for each switch interval measured)."""
    keys = sorted({k[len("launches_per_s"):] for r in rows for k in r if k.startswith("launches_per_s")})
    switch_ms = sys.getswitchinterval() * 1e3
    head = ["operation", "ms a call: alone / beside ticker / beside launches", "ticker's longest gap, ms",
            f"ticker stalled > {STALL_MS:g} ms", "longest stall a call (median), ms", "verdict"]
    head += [f"launches/s (of idle), switch {k[len('_switch_'):] if k else f'{switch_ms:g}ms'}" for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if idle:
        rates = " | ".join(f"{idle.get(k, 0):,.0f}" for k in keys)
        lines.append(f"| nothing (idle) | - | - | - | - | - | {rates} |")
    for r in rows:
        if "verdict" not in r:
            lines.append(f"| {r['operation']} | failed: {r.get('error', '?')} |" + " |" * (len(head) - 2))
            continue
        ms = " / ".join("-" if r.get(k) is None else f"{r[k]:.1f}"
                        for k in ("alone_ms", "beside_ticker_ms", "beside_launcher_ms"))
        cells = [r["operation"], ms, f"{r['ticker_longest_gap_ms']:.1f}", f"{r['ticker_stalled']:.0%}",
                 f"{r['ticker_stall_per_call_ms']:.1f}", r["verdict"]]
        for k in keys:
            rate, share = r.get(f"launches_per_s{k}"), r.get(f"launches_of_idle{k}")
            cells.append("-" if rate is None else f"{rate:,.0f}" + (f" ({share:.0%})" if share is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def probe(operations: Sequence[tuple], body: Callable[[], Any] | None = None, *, seconds: float = 0.5,
          switch_intervals: Sequence[float | None] = (None, 5e-4), sync: Callable[[], Any] | None = None,
          min_calls: int = 3) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """:func:`measure` of each ``(name, op)`` or ``(name, op, settle)``; returns the rows and the launcher's idle
    rates (empty without ``body``), measured before and after the rows (the higher of the two is kept and the rows'
    ``launches_of_idle`` are against it)."""
    idle = idle_rates(body, switch_intervals, min(seconds, 0.3), sync) if body is not None else {}
    rows = [measure(spec[0], spec[1], body, seconds=seconds, min_calls=min_calls,
                    settle=spec[2] if len(spec) > 2 else None, switch_intervals=switch_intervals, idle=idle,
                    sync=sync) for spec in operations]
    if body is not None:  # idle again after the rows: of the two, the faster (a busy machine slows either)
        again = idle_rates(body, switch_intervals, min(seconds, 0.3), sync)
        idle = {k: max(v, again.get(k, 0.0)) for k, v in idle.items()}
        for row in rows:
            for k, rate in idle.items():
                if f"launches_per_s{k}" in row and rate:
                    row[f"launches_of_idle{k}"] = row[f"launches_per_s{k}"] / rate
    return rows, idle
