"""Network feature family and the Orbit-style baseline scores (love and reach).

Ties are built from the activities in the network window ``[as_of - network_window_days,
as_of)``:

- *co-participation*: two members with an activity on the same ``event_id``;
- *direct*: an activity of member *i* with ``counterpart_id`` *j* (either direction).

Tie strength between *i* and *j* (Orbit's reach rule, connections lose 10 % per month):

    strength(i, j) = sum over shared events e of decay ** months(as_of - t_e)
                   + direct_tie_weight * sum over direct interactions k of
                     decay ** months(as_of - t_k)

where ``t_e`` is the latest activity time of the event inside the window and a month is
``days_per_month`` days. Co-participation is computed with ``scipy.sparse``: the member x event
incidence ``B`` (binary) times ``B^T`` in row blocks whose size is bounded by
``config.block_pairs`` member pairs, so events with hundreds of attendees never materialise the
whole pair matrix at once. Blocks run on a small thread pool (the sparse kernels release the GIL).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.encoding import NO_TIME, NS_PER_DAY
from features.feature_config import FeatureConfig, Snapshot, build_snapshot
from features.tables import Tables

__all__ = [
    "NetworkInputs",
    "NetworkStats",
    "build_network_inputs",
    "compute_network_stats",
    "build_network_features",
    "build_orbit_features",
]

_INPUTS_KEY = "features.network_inputs"
_STATS_KEY = "features.network_stats"


def _max_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True, eq=False)
class NetworkInputs:
    """Sparse building blocks of the network at one as_of (all indexed by member code).

    Attributes:
        incidence: Binary member x event matrix (CSR, float32) of the window.
        incidence_t: Its transpose (event x member, CSR).
        direct: Symmetric member x member direct-tie strengths (CSR, no diagonal).
        event_decay: Decay factor per event code (0 for events outside the window).
        event_size: Distinct members per event code in the window.
    """

    incidence: sp.csr_matrix
    incidence_t: sp.csr_matrix
    direct: sp.csr_matrix
    event_decay: np.ndarray
    event_size: np.ndarray

    @property
    def has_events(self) -> np.ndarray:
        """Whether each member has at least one event in the window."""
        return np.diff(self.incidence.indptr) > 0

    def reach(self) -> np.ndarray:
        """Sum of tie strengths per member code (off-diagonal row sums of the tie matrix)."""
        shared = self.incidence @ (self.event_decay * np.maximum(self.event_size - 1, 0))
        return shared + np.asarray(self.direct.sum(axis=1)).ravel()


def _memo_get(tables: Tables, slot: str, key):
    hit = tables.cache.get(slot)
    if hit is not None and hit[0] == key:
        return hit[1]
    return None


def _decay(snap: Snapshot, times: np.ndarray, per_month: float, days_per_month: float):
    months = (snap.now - times) / (days_per_month * NS_PER_DAY)
    return np.exp(np.log(per_month) * months)  # per_month ** months, ~3x faster


def build_network_inputs(tables: Tables, as_of, config: FeatureConfig) -> NetworkInputs:
    """Build (and memoise for the latest as_of) the sparse matrices of the network window."""
    snap = build_snapshot(tables, as_of)
    key = (
        snap.now,
        config.network_window_days,
        config.tie_decay_per_month,
        config.days_per_month,
        config.direct_tie_weight,
    )
    memo = _memo_get(tables, _INPUTS_KEY, key)
    if memo is not None:
        return memo

    enc, n_members = snap.enc, snap.enc.n_members
    lo, hi = snap.start(config.network_window_days), snap.n
    member, time = enc.member[lo:hi], enc.time[lo:hi]

    event = enc.event[lo:hi]
    on_event = event >= 0
    ev_member, ev_code, ev_time = member[on_event], event[on_event], time[on_event]
    incidence = sp.csr_matrix(
        (np.ones(len(ev_member), dtype=np.float32), (ev_member, ev_code)),
        shape=(n_members, enc.n_events),
    )
    incidence.sum_duplicates()
    incidence.data[:] = 1.0
    last = np.full(enc.n_events, NO_TIME, dtype=np.int64)
    np.maximum.at(last, ev_code, ev_time)
    in_window = last != NO_TIME
    decay = np.zeros(enc.n_events)
    decay[in_window] = _decay(
        snap, last[in_window], config.tie_decay_per_month, config.days_per_month
    )
    size = np.bincount(incidence.indices, minlength=enc.n_events).astype(np.float64)

    counterpart = enc.counterpart[lo:hi]
    direct_rows = (counterpart >= 0) & (counterpart != member)
    d_member, d_other = member[direct_rows], counterpart[direct_rows]
    d_strength = config.direct_tie_weight * _decay(
        snap, time[direct_rows], config.tie_decay_per_month, config.days_per_month
    )
    direct = sp.csr_matrix(
        (
            np.concatenate([d_strength, d_strength]),
            (np.concatenate([d_member, d_other]), np.concatenate([d_other, d_member])),
        ),
        shape=(n_members, n_members),
    )
    direct.sum_duplicates()

    inputs = NetworkInputs(
        incidence=incidence,
        incidence_t=incidence.tocsc().T.tocsr(),
        direct=direct,
        event_decay=decay,
        event_size=size,
    )
    tables.cache[_INPUTS_KEY] = (key, inputs)
    return inputs


@dataclass(frozen=True, eq=False)
class NetworkStats:
    """Per-member network measures at one as_of (arrays indexed by member code).

    Attributes:
        coparticipants: Distinct members sharing at least one event.
        direct_ties: Distinct direct counterparts (either direction).
        ties: Distinct tied members (union of both kinds).
        strength: Sum of tie strengths (= Orbit-style reach).
        quiet_ties: Ties without any activity in the last ``active_within_days``.
        outside_ties: Ties who are not in the member's home chapter (another or no home
            chapter, or not joined before as_of; all ties when the member has no home chapter).
        chapter_known_ties: Ties in the same home chapter (joined before as_of).
    """

    coparticipants: np.ndarray
    direct_ties: np.ndarray
    ties: np.ndarray
    strength: np.ndarray
    quiet_ties: np.ndarray
    outside_ties: np.ndarray
    chapter_known_ties: np.ndarray


def _blocks(work: np.ndarray, budget: int, workers: int) -> list[tuple[int, int]]:
    """Cut member codes into contiguous ranges of at most ~``budget`` pair operations."""
    total = float(work.sum())
    if total == 0:
        return []
    n_blocks = int(np.ceil(total / budget))
    if total > 1_000_000:
        n_blocks = max(n_blocks, workers)
    cum = np.cumsum(work)
    cuts = np.searchsorted(cum, total * np.arange(1, n_blocks) / n_blocks, side="left") + 1
    edges = np.unique(np.concatenate([[0], cuts, [len(work)]]))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _shared_event(incidence: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each member pair (rows[k], cols[k]): do they share an event in the window?"""
    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    both = incidence[rows].multiply(incidence[cols])
    return np.asarray(both.sum(axis=1)).ravel() > 0


def _coparticipation(
    enc,
    inputs,
    config: FeatureConfig,
    quiet: np.ndarray,
    in_chapter: np.ndarray,
    own_chapter: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per member: co-participants, of them quiet ones, and those of the home chapter.

    Computed by row blocks of ``incidence @ incidence_t`` (in threads when there are several);
    each block's pattern is reduced with sparse products and dropped.
    """
    n_members, chapter = enc.n_members, enc.member_chapter
    onehot = sp.csr_matrix(
        (np.ones(len(in_chapter), dtype=np.float32), (in_chapter, chapter[in_chapter])),
        shape=(n_members, max(enc.n_chapters, 1)),
    )
    has_events, incidence = inputs.has_events, inputs.incidence

    def run(block: tuple[int, int]) -> tuple[int, int, list[np.ndarray]]:
        r0, r1 = block
        own = has_events[r0:r1]
        # Pattern of the co-participation pairs (values: shared events, not used); the
        # diagonal (each member with itself) is there for members with events.
        pairs = incidence[r0:r1] @ inputs.incidence_t
        pairs.data[:] = 1.0
        n_pairs = np.diff(pairs.indptr) - own
        quiet_pairs = pairs @ quiet - own * quiet[r0:r1]
        by_chapter = pairs @ onehot
        rid = np.repeat(np.arange(r1 - r0), np.diff(by_chapter.indptr))
        same = by_chapter.indices == chapter[r0:r1][rid]
        same_pairs = np.bincount(rid[same], weights=by_chapter.data[same], minlength=r1 - r0)
        same_pairs -= own & own_chapter[r0:r1]
        return r0, r1, [n_pairs, np.rint(quiet_pairs), np.rint(same_pairs)]

    blocks = _blocks(incidence @ inputs.event_size, config.block_pairs, _max_workers())
    if len(blocks) > 1:
        with ThreadPoolExecutor(max_workers=_max_workers()) as pool:
            results = list(pool.map(run, blocks))
    else:
        results = [run(b) for b in blocks]
    out = tuple(np.zeros(n_members, dtype=np.int64) for _ in range(3))
    for r0, r1, values in results:
        for target, value in zip(out, values, strict=True):
            target[r0:r1] = value
    return out


def compute_network_stats(tables: Tables, as_of, config: FeatureConfig) -> NetworkStats:
    """Compute (and memoise for the latest as_of) the per-member network measures.

    Co-participation measures come from row blocks of ``incidence @ incidence_t`` (the block's
    pattern is reduced with sparse mat-vec / mat-mat products and dropped); direct ties are a
    small symmetric matrix handled once, counting only the direct partners who are not also
    co-participants, so that the union is never materialised.
    """
    snap = build_snapshot(tables, as_of)
    key = (
        snap.now,
        config.network_window_days,
        config.tie_decay_per_month,
        config.days_per_month,
        config.direct_tie_weight,
        config.active_within_days,
    )
    memo = _memo_get(tables, _STATS_KEY, key)
    if memo is not None:
        return memo

    inputs = build_network_inputs(tables, as_of, config)
    enc, n_members = snap.enc, snap.enc.n_members
    recent = enc.member[snap.start(config.active_within_days) : snap.n]
    quiet = (np.bincount(recent, minlength=n_members) == 0).astype(np.float32)
    # A tie is "in the home chapter" when the tied member has that home chapter and had
    # joined before as_of.
    in_chapter = np.flatnonzero((enc.member_chapter >= 0) & (enc.joined < snap.now))
    own_chapter = np.zeros(n_members, dtype=bool)
    own_chapter[in_chapter] = True
    coparticipants, quiet_ties, same_ties = _coparticipation(
        enc, inputs, config, quiet, in_chapter, own_chapter
    )
    # Direct partners: each undirected pair appears twice in the symmetric matrix.
    direct = inputs.direct.tocoo()
    d_row, d_col = direct.row.astype(np.int64), direct.col.astype(np.int64)
    only = ~_shared_event(inputs.incidence, d_row, d_col)
    o_row, o_col = d_row[only], d_col[only]
    direct_ties = np.bincount(d_row, minlength=n_members)
    ties = coparticipants + np.bincount(o_row, minlength=n_members)
    quiet_ties += np.rint(
        np.bincount(o_row, weights=quiet[o_col], minlength=n_members)
    ).astype(np.int64)
    chapter = enc.member_chapter
    same_direct = own_chapter[o_col] & (chapter[o_col] == chapter[o_row])
    same_ties += np.bincount(o_row[same_direct], minlength=n_members)

    stats = NetworkStats(
        coparticipants=coparticipants,
        direct_ties=direct_ties,
        ties=ties,
        strength=np.maximum(inputs.reach(), 0.0),
        quiet_ties=quiet_ties,
        outside_ties=ties - same_ties,
        chapter_known_ties=same_ties,
    )
    tables.cache[_STATS_KEY] = (key, stats)
    return stats


def build_network_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Network measures within the last ``network_window_days`` (see the module docstring).

    Columns: ``net_coparticipants`` (distinct members sharing an event), ``net_direct_ties``
    (distinct direct counterparts, either direction), ``net_ties`` (distinct tied members, both
    kinds), ``net_tie_strength_mean`` (sum of tie strengths / ties), ``net_quiet_tie_share``
    (share of ties with no activity in the last ``active_within_days``),
    ``net_ties_outside_chapter`` and ``net_outside_chapter_share`` (ties whose home chapter
    differs), ``has_ties`` (0/1). Shares and means are 0 without ties.
    """
    snap = build_snapshot(tables, as_of)
    stats = compute_network_stats(tables, as_of, config)
    rows = snap.rows
    ties = stats.ties[rows]
    safe = np.maximum(ties, 1)
    return snap.frame(
        {
            "net_coparticipants": stats.coparticipants[rows],
            "net_direct_ties": stats.direct_ties[rows],
            "net_ties": ties,
            "net_tie_strength_mean": np.where(ties > 0, stats.strength[rows] / safe, 0.0),
            "net_quiet_tie_share": np.where(ties > 0, stats.quiet_ties[rows] / safe, 0.0),
            "net_ties_outside_chapter": stats.outside_ties[rows],
            "net_outside_chapter_share": np.where(
                ties > 0, stats.outside_ties[rows] / safe, 0.0
            ),
            "has_ties": (ties > 0).astype(np.int64),
        }
    )


def build_orbit_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Orbit-style baseline scores.

    Columns: ``orbit_love`` = sum over all activities before as_of of ``weight *
    love_decay_per_month ** months since the activity`` (involvement, recent activity counting
    more); ``orbit_reach`` = sum of the strengths of the member's ties in the network window
    (Orbit's "sum of connection strength", with connections losing 10 % per month).
    """
    snap = build_snapshot(tables, as_of)
    enc = snap.enc
    decay = _decay(
        snap, enc.time[: snap.n], config.love_decay_per_month, config.days_per_month
    )
    love = np.bincount(
        enc.member[: snap.n], weights=enc.weight[: snap.n] * decay, minlength=enc.n_members
    )
    reach = build_network_inputs(tables, as_of, config).reach()
    return snap.frame(
        {
            "orbit_love": love[snap.rows],
            "orbit_reach": np.maximum(reach[snap.rows], 0.0),
        }
    )
