"""Benchmark: one point-in-time feature snapshot on a synthetic activity log.

The log is generated with numpy only (no simulator): members grouped in chapters of ~1,000,
70 % of activities tied to events whose sizes are log-normal (median 15, capped at
``max_event_size``, so a few events have hundreds of attendees, mostly from the event's chapter),
the rest posts, comments, donations and direct messages between members of a chapter; a roles
table gives ~2 % of members an ambassador spell.

Usage::

    python -m benchmarks.bench_features                      # 200k members, 5M activities
    python -m benchmarks.bench_features --members 2000 --activities 50000 --no-write

Figures are appended to ``benchmarks/results/features.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.tables import Tables

__all__ = ["generate_tables", "run_benchmark", "main"]

_DAY = 86_400 * 10**9
_EVENT_TYPES = np.array(["attend", "register", "organize", "speak", "volunteer"])
_EVENT_TYPE_P = [0.62, 0.22, 0.03, 0.04, 0.09]
_EVENT_ROLES = np.array(["attendee", None, "organizer", "speaker", "volunteer"], dtype=object)
_OTHER_TYPES = np.array(["message", "post", "comment", "donate"])
_OTHER_TYPE_P = [0.35, 0.25, 0.3, 0.1]
_WEIGHTS = {
    "attend": 1.0, "register": 0.5, "organize": 5.0, "speak": 3.0, "volunteer": 2.0,
    "message": 0.5, "post": 1.0, "comment": 0.3, "donate": 2.0,
}


def _text(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype="str")


def _from_codes(codes: np.ndarray, names: np.ndarray) -> pd.Series:
    cat = pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype="str"))
    return pd.Series(cat).astype("str")


def generate_tables(
    members: int = 200_000,
    activities: int = 5_000_000,
    days: int = 1095,
    max_event_size: int = 500,
    seed: int = 0,
    end: str = "2025-01-01",
) -> Tables:
    """Generate a synthetic, contract-shaped :class:`Tables` (vectorised, no simulator).

    Args:
        members: Number of members.
        activities: Approximate number of activities.
        days: Length of the activity log in days (ending at ``end``).
        max_event_size: Largest event (attendees).
        seed: Random seed.
        end: End of the log.
    """
    rng = np.random.default_rng(seed)
    end_ns = pd.Timestamp(end).value
    start_ns = end_ns - days * _DAY
    n_chapters = max(2, members // 1000)
    member_chapter = np.sort(rng.integers(0, n_chapters, members))
    joined = start_ns - 365 * _DAY + (rng.random(members) * (days + 335) * _DAY).astype(np.int64)
    log = _Log(rng, members, n_chapters, member_chapter, start_ns, days)
    events = _event_rows(log, int(activities * 0.7), max_event_size)
    others = _other_rows(log, activities - len(events["member"]))
    member_ids = np.array([f"m{i:07d}" for i in range(members)], dtype=object)
    chapter_ids = np.array([f"c{i:04d}" for i in range(n_chapters)], dtype=object)
    acts = _activity_frame(events, others, member_ids, chapter_ids)
    members_df = pd.DataFrame(
        {
            "member_id": _text(member_ids),
            "joined_at": pd.to_datetime(joined).as_unit("ns"),
            "chapter_id": _from_codes(member_chapter, chapter_ids),
            "email": _text(np.char.add(member_ids.astype(str), "@corecast.invalid")),
            "consent": rng.random(members) < 0.95,
        }
    )
    roles = _role_frame(log, end_ns, member_ids, chapter_ids)
    return Tables(members=members_df, activities=acts, roles=roles, source="<synthetic>")


@dataclass(frozen=True)
class _Log:
    """What every part of the synthetic log draws from: the generator and the chapters."""

    rng: np.random.Generator
    members: int
    n_chapters: int
    member_chapter: np.ndarray  # sorted: each chapter's members are contiguous
    start_ns: int
    days: int

    @property
    def ch_size(self) -> np.ndarray:
        return np.bincount(self.member_chapter, minlength=self.n_chapters)

    @property
    def ch_first(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.ch_size)[:-1]])

    def times(self, n: int) -> np.ndarray:
        return self.start_ns + (self.rng.random(n) * self.days * _DAY).astype(np.int64)


def _event_rows(log: _Log, n_event_rows: int, max_event_size: int) -> dict[str, np.ndarray]:
    """Events and their attendees: mostly members of the event's chapter."""
    rng, members = log.rng, log.members
    ch_size, ch_first = log.ch_size, log.ch_first
    sizes = np.clip(np.rint(rng.lognormal(np.log(15), 1.0, n_event_rows // 10 + 10)), 2,
                    max_event_size).astype(np.int64)
    n_events = int(np.searchsorted(np.cumsum(sizes), n_event_rows)) + 1
    sizes = sizes[:n_events]
    ev_chapter = log.member_chapter[rng.integers(0, members, n_events)]
    ev_time = log.times(n_events)
    ev = np.repeat(np.arange(n_events), sizes)[:n_event_rows]
    chap = ev_chapter[ev]
    local = rng.random(len(ev)) < 0.85
    skew = rng.random(len(ev)) ** 2
    member = np.where(
        local,
        ch_first[chap] + (skew * ch_size[chap]).astype(np.int64),
        rng.integers(0, members, len(ev)),
    )
    e_type = rng.choice(len(_EVENT_TYPES), size=len(ev), p=_EVENT_TYPE_P)
    time = ev_time[ev] - np.where(e_type == 1, rng.integers(0, 14 * _DAY, len(ev)), 0)
    return {"member": member, "time": time, "type": e_type, "event": ev, "chapter": chap,
            "n_events": np.int64(n_events)}


def _other_rows(log: _Log, n_other: int) -> dict[str, np.ndarray]:
    """Activities without an event; messages have a counterpart in the same chapter."""
    rng, members = log.rng, log.members
    activity_rank = rng.permutation(members)
    member = activity_rank[(rng.random(n_other) ** 2 * members).astype(np.int64)]
    o_type = rng.choice(len(_OTHER_TYPES), size=n_other, p=_OTHER_TYPE_P)
    time = log.times(n_other)
    chap = log.member_chapter[member]
    counterpart = np.where(
        o_type == 0,
        log.ch_first[chap] + (rng.random(n_other) * log.ch_size[chap]).astype(np.int64),
        -1,
    )
    return {"member": member, "time": time, "type": o_type, "chapter": chap,
            "counterpart": counterpart}


def _activity_frame(events: dict, others: dict, member_ids, chapter_ids) -> pd.DataFrame:
    """Both kinds of rows as one contract-shaped activities table, sorted by time."""
    n_ev, n_other = len(events["member"]), len(others["member"])
    member = np.concatenate([events["member"], others["member"]])
    time_ns = np.concatenate([events["time"], others["time"]])
    type_names = np.concatenate([_EVENT_TYPES, _OTHER_TYPES])
    type_code = np.concatenate([events["type"], len(_EVENT_TYPES) + others["type"]])
    role_lut = np.concatenate([np.arange(5), np.full(4, -1)])
    role_lut[1] = -1
    role_names = np.array(["attendee", "none", "organizer", "speaker", "volunteer"])
    event_code = np.concatenate([events["event"], np.full(n_other, -1)])
    act_chapter = np.concatenate([events["chapter"], others["chapter"]])
    cp = np.concatenate([np.full(n_ev, -1), others["counterpart"]])
    weight_lut = np.array([_WEIGHTS[t] for t in type_names])
    order = np.argsort(time_ns, kind="stable")
    event_ids = np.array([f"e{i:07d}" for i in range(int(events["n_events"]))], dtype=object)
    return pd.DataFrame(
        {
            "member_id": _from_codes(member[order], member_ids),
            "occurred_at": pd.to_datetime(time_ns[order]).as_unit("ns"),
            "activity_type": _from_codes(type_code[order], type_names),
            "event_id": _from_codes(event_code[order], event_ids),
            "chapter_id": _from_codes(act_chapter[order], chapter_ids),
            "role": _from_codes(role_lut[type_code[order]], role_names),
            "counterpart_id": _from_codes(cp[order], member_ids),
            "weight": weight_lut[type_code[order]],
        }
    )


def _role_frame(log: _Log, end_ns: int, member_ids, chapter_ids) -> pd.DataFrame:
    """Ambassador spells of one member in 50; half of them still open."""
    rng = log.rng
    n_spells = max(1, log.members // 50)
    spell_member = rng.choice(log.members, n_spells, replace=False)
    spell_start = log.times(n_spells)
    spell_len = (rng.random(n_spells) * 400 * _DAY).astype(np.int64)
    open_spell = (rng.random(n_spells) < 0.5) | (spell_start + spell_len >= end_ns)
    spell_end = np.where(open_spell, np.iinfo(np.int64).min, spell_start + spell_len)
    return pd.DataFrame(
        {
            "member_id": _text(member_ids[spell_member]),
            "role": _text(np.full(n_spells, "ambassador", dtype=object)),
            "started_at": pd.to_datetime(spell_start).as_unit("ns"),
            "ended_at": pd.to_datetime(spell_end).as_unit("ns"),
            "chapter_id": _from_codes(log.member_chapter[spell_member], chapter_ids),
        }
    )


def run_benchmark(
    members: int, activities: int, max_event_size: int = 500, seed: int = 0
) -> dict[str, float]:
    """Generate a log, then time the encoding and two feature snapshots.

    Returns:
        Figures: generation, encoding, per-family and total snapshot seconds, and sizes.
    """
    from features.build import FAMILY_BUILDERS
    from features.encoding import encode_tables
    from features.feature_config import FeatureConfig, resolve_vocabulary

    t0 = time.perf_counter()
    tables = generate_tables(members, activities, max_event_size=max_event_size, seed=seed)
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    enc = encode_tables(tables)
    encoded = time.perf_counter() - t0

    as_of = pd.Timestamp("2025-01-01") - pd.Timedelta(days=90)
    config = resolve_vocabulary(tables, as_of, FeatureConfig())
    figures: dict[str, float] = {
        "members": members,
        "activities": len(tables.activities),
        "events": enc.n_events,
        "largest_event": int(np.bincount(enc.event[enc.event >= 0]).max()),
        "generate_s": generated,
        "encode_s": encoded,
    }
    for label, when in (("snapshot", as_of), ("snapshot_2", as_of - pd.Timedelta(days=30))):
        total = 0.0
        cpu0 = time.process_time()
        parts = []
        for name, builder in FAMILY_BUILDERS.items():
            t0 = time.perf_counter()
            parts.append(builder(tables, when, config))
            secs = time.perf_counter() - t0
            figures[f"{label}_{name}_s"] = secs
            total += secs
        t0 = time.perf_counter()
        frame = pd.concat(parts, axis=1)
        total += time.perf_counter() - t0
        figures[f"{label}_s"] = total
        figures[f"{label}_cpu_s"] = time.process_time() - cpu0
        figures["rows"] = len(frame)
        figures["columns"] = frame.shape[1]
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main(argv: list[str] | None = None, **params) -> dict[str, float]:
    """Command-line entry point (see the module docstring).

    Called with keyword arguments instead (``main(members=..., activities=...)``, as
    :func:`benchmarks.harness.run_step` does), it only runs :func:`run_benchmark` and returns
    the figures without printing or writing anything.
    """
    if params:
        return run_benchmark(**params)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--activities", type=int, default=5_000_000)
    parser.add_argument("--max-event-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    figures = run_benchmark(args.members, args.activities, args.max_event_size, args.seed)
    from features.build import FAMILY_BUILDERS

    families = list(FAMILY_BUILDERS)
    for key, value in figures.items():
        print(f"{key:32s} {value:12.3f}" if isinstance(value, float) else f"{key:32s} {value:12d}")
    if not args.no_write:
        from benchmarks.harness import append_results

        rows = [[
            f"{figures['members']:,}", f"{figures['activities']:,}", f"{figures['events']:,}",
            figures["largest_event"], f"{figures['encode_s']:.2f}",
            f"{figures['snapshot_s']:.2f}", f"{figures['snapshot_2_s']:.2f}",
            f"{figures['snapshot_cpu_s']:.2f}", f"{figures['peak_rss_mb']:.0f}",
        ]]
        per_family = ", ".join(
            f"{name} {figures[f'snapshot_{name}_s']:.2f}" for name in families
        )
        append_results(
            "features.md",
            "Feature snapshot (build_features)",
            ["members", "activities", "events", "largest event", "encode (s, once)",
             "snapshot (s)", "2nd snapshot (s)", "snapshot CPU (s, all threads)",
             "peak RSS (MB)"],
            rows,
            notes=[
                f"{figures['rows']:,} rows x {figures['columns']} columns. Seconds per family "
                f"(first snapshot): {per_family}.",
                "Encoding (string columns to integer codes) runs once per data source and is "
                "shared by every snapshot of a training frame.",
                "Load average when the run ended (1/5/15 min): "
                + " / ".join(f"{x:.1f}" for x in os.getloadavg())
                + " (other work on the machine slows the figures down).",
            ],
        )
    return figures


if __name__ == "__main__":
    main()
