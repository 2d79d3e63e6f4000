"""Member partitions: build the point-in-time features of one slice of the members.

Members are split into ``n_parts`` parts by a stable hash of their ``member_id``
(:func:`partition_of`): the same member lands in the same part in every process, on every
machine and at every date, so parts can be built by independent workers and concatenated.

A member's features depend on other members (co-participants, the chapter, tie activity), so a
partition is *not* a slice of the input tables. Each partition reads the whole member, activity,
event and role tables and only *emits* its own members' rows:

- the per-member families (activity, recency, tenure, trend, regularity, diversity, roles,
  chapter, orbit) are linear passes over the activity log; they run over all members and the
  part's rows are kept;
- the network family, whose cost is the co-participation pair products, multiplies only the
  part's rows of the member x event incidence by the whole event x member incidence (in blocks
  of at most ``config.block_pairs`` pairs), so each part pays for its own pairs only. Event
  sizes, tie activity and home chapters come from the whole window.

``pd.concat`` of the parts, reindexed to the single-process row order, equals
:func:`features.build.build_features` exactly (same columns, dtypes and values).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.build import FAMILY_BUILDERS
from features.errors import ConfigError
from features.feature_config import FeatureConfig, build_snapshot, resolve_vocabulary
from features.network import build_network_inputs
from features.tables import Tables, parse_as_of

__all__ = [
    "partition_of",
    "hash_member_ids",
    "check_partition",
    "build_features_partitioned",
    "build_features_for_members",
    "build_network_features_for",
]

#: Fixed 16-byte key of the member hash (changing it reshuffles every partition).
_HASH_KEY = "corecast-members"


def check_partition(n_parts: int, part: int) -> None:
    """Raise :class:`ConfigError` unless ``0 <= part < n_parts`` are whole numbers."""
    if isinstance(n_parts, bool) or not isinstance(n_parts, int | np.integer) or n_parts < 1:
        raise ConfigError(f"partitions: n_parts must be a positive whole number, got {n_parts!r}")
    if isinstance(part, bool) or not isinstance(part, int | np.integer) or not (
        0 <= part < n_parts
    ):
        raise ConfigError(f"partitions: part must be in 0..{n_parts - 1}, got {part!r}")


def partition_of(member_ids, n_parts: int) -> np.ndarray:
    """Part number (0 .. n_parts-1) of each member id, stable across processes and runs.

    The id is hashed as text (``"42"`` and ``42`` land in the same part) with a fixed key.

    Args:
        member_ids: Member ids (any array-like).
        n_parts: Number of parts (>= 1).

    Returns:
        An int64 array, one part per id.
    """
    check_partition(n_parts, 0)
    return (hash_member_ids(member_ids, _HASH_KEY) % np.uint64(n_parts)).astype(np.int64)


def hash_member_ids(member_ids, key: str) -> np.ndarray:
    """A uint64 hash of each member id, as text (``"42"`` and ``42`` hash alike), under ``key``.

    Args:
        member_ids: Member ids (any array-like).
        key: A 16-character hash key; different keys give independent hashes.

    Returns:
        A uint64 array, one hash per id.
    """
    text = pd.Series(np.asarray(member_ids, dtype=object)).astype(str).to_numpy(dtype=object)
    return pd.util.hash_array(text, hash_key=key, categorize=True)


def _row_blocks(work: np.ndarray, budget: int) -> list[np.ndarray]:
    """Cut positions ``0..len(work)-1`` into consecutive runs of at most ~``budget`` pairs."""
    if len(work) == 0:
        return []
    cum = np.cumsum(work, dtype=np.float64)
    block = np.floor(cum / max(budget, 1)).astype(np.int64)
    edges = np.flatnonzero(np.diff(block)) + 1
    return np.split(np.arange(len(work)), edges)


def _network_stats_for(tables: Tables, as_of, config: FeatureConfig, codes: np.ndarray) -> dict:
    """The network measures of member codes ``codes`` only (see the module docstring)."""
    snap = build_snapshot(tables, as_of)
    enc, n_members = snap.enc, snap.enc.n_members
    inputs = build_network_inputs(tables, as_of, config)
    incidence = inputs.incidence
    recent = enc.member[snap.start(config.active_within_days) : snap.n]
    quiet = (np.bincount(recent, minlength=n_members) == 0).astype(np.float32)
    chapter = enc.member_chapter
    in_chapter = np.flatnonzero((chapter >= 0) & (enc.joined < snap.now))
    onehot = sp.csr_matrix(
        (np.ones(len(in_chapter), dtype=np.float32), (in_chapter, chapter[in_chapter])),
        shape=(n_members, max(enc.n_chapters, 1)),
    )
    own_chapter = np.zeros(n_members, dtype=bool)
    own_chapter[in_chapter] = True
    has_events = inputs.has_events

    n = len(codes)
    coparticipants = np.zeros(n, dtype=np.int64)
    quiet_ties = np.zeros(n, dtype=np.int64)
    same_ties = np.zeros(n, dtype=np.int64)
    work = incidence[codes] @ inputs.event_size
    for pos in _row_blocks(work, config.block_pairs):
        rows = codes[pos]
        own = has_events[rows]
        pairs = incidence[rows] @ inputs.incidence_t
        pairs.data[:] = 1.0
        coparticipants[pos] = np.diff(pairs.indptr) - own
        quiet_ties[pos] = np.rint(pairs @ quiet - own * quiet[rows])
        by_chapter = pairs @ onehot
        rid = np.repeat(np.arange(len(rows)), np.diff(by_chapter.indptr))
        same = by_chapter.indices == chapter[rows][rid]
        same_pairs = np.bincount(rid[same], weights=by_chapter.data[same], minlength=len(rows))
        same_ties[pos] = np.rint(same_pairs - (own & own_chapter[rows]))

    direct = inputs.direct[codes].tocoo()
    d_local, d_col = direct.row.astype(np.int64), direct.col.astype(np.int64)
    d_row = codes[d_local]
    if len(d_row):
        both = incidence[d_row].multiply(incidence[d_col])
        only = ~(np.asarray(both.sum(axis=1)).ravel() > 0)
    else:
        only = np.zeros(0, dtype=bool)
    o_local, o_row, o_col = d_local[only], d_row[only], d_col[only]
    direct_ties = np.bincount(d_local, minlength=n)
    ties = coparticipants + np.bincount(o_local, minlength=n)
    quiet_ties += np.rint(np.bincount(o_local, weights=quiet[o_col], minlength=n)).astype(
        np.int64
    )
    same_direct = own_chapter[o_col] & (chapter[o_col] == chapter[o_row])
    same_ties += np.bincount(o_local[same_direct], minlength=n)
    return {
        "coparticipants": coparticipants,
        "direct_ties": direct_ties,
        "ties": ties,
        "strength": np.maximum(inputs.reach()[codes], 0.0),
        "quiet_ties": quiet_ties,
        "outside_ties": ties - same_ties,
    }


def build_network_features_for(
    tables: Tables, as_of, config: FeatureConfig, codes: np.ndarray
) -> pd.DataFrame:
    """The network family (:func:`features.network.build_network_features`) for some members.

    Args:
        tables: A validated data source.
        as_of: Snapshot time.
        config: Feature settings.
        codes: Member codes (positions in ``tables.members``) of the output rows.

    Returns:
        The family's columns for ``codes``, index ``member_id``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    snap = build_snapshot(tables, as_of)
    s = _network_stats_for(tables, as_of, config, codes)
    ties = s["ties"]
    safe = np.maximum(ties, 1)
    index = snap.enc.member_ids[codes]
    index.name = "member_id"
    return pd.DataFrame(
        {
            "net_coparticipants": s["coparticipants"],
            "net_direct_ties": s["direct_ties"],
            "net_ties": ties,
            "net_tie_strength_mean": np.where(ties > 0, s["strength"] / safe, 0.0),
            "net_quiet_tie_share": np.where(ties > 0, s["quiet_ties"] / safe, 0.0),
            "net_ties_outside_chapter": s["outside_ties"],
            "net_outside_chapter_share": np.where(ties > 0, s["outside_ties"] / safe, 0.0),
            "has_ties": (ties > 0).astype(np.int64),
        },
        index=index,
    )


def build_features_partitioned(
    tables: Tables, as_of, config: FeatureConfig, n_parts: int, part: int
) -> pd.DataFrame:
    """The rows of part ``part`` of :func:`features.build.build_features`.

    Args:
        tables: A validated data source (read whole; see the module docstring).
        as_of: Snapshot time.
        config: Feature settings; pass a resolved config (:func:`resolve_vocabulary`) so every
            part has the same columns (an unresolved one is resolved here, from the same rows,
            hence identically in every part).
        n_parts: Number of parts.
        part: Which part (0-based).

    Returns:
        The members of the part with ``joined_at < as_of``, in members-table order, with the
        columns, dtypes and values of ``build_features`` for those members.

    Raises:
        ConfigError: For an invalid ``n_parts`` / ``part``.
    """
    check_partition(n_parts, part)
    ts = parse_as_of(as_of)
    snap = build_snapshot(tables, ts)
    return _build_features_where(tables, ts, config, partition_of(snap.index, n_parts) == part)


def build_features_for_members(
    tables: Tables, as_of, config: FeatureConfig, member_ids
) -> pd.DataFrame:
    """The rows of :func:`features.build.build_features` of some members only.

    The network family, the costly one, is computed for those members only (see the module
    docstring); the other families run over everyone and keep their rows.

    Args:
        tables: A validated data source (read whole).
        as_of: Snapshot time.
        config: Feature settings (pass a resolved config to get fixed columns).
        member_ids: The members wanted; ids unknown at ``as_of`` are ignored.

    Returns:
        The wanted members with ``joined_at < as_of``, in members-table order, with the
        columns, dtypes and values of ``build_features`` for them.
    """
    ts = parse_as_of(as_of)
    snap = build_snapshot(tables, ts)
    wanted = pd.Index(member_ids).astype(str) if len(member_ids) else pd.Index([], dtype=str)
    return _build_features_where(tables, ts, config, snap.index.isin(wanted))


def _build_features_where(
    tables: Tables, ts: pd.Timestamp, config: FeatureConfig, mine: np.ndarray
) -> pd.DataFrame:
    """``build_features`` rows of the snapshot's members where ``mine`` is true."""
    config = resolve_vocabulary(tables, ts, config)
    snap = build_snapshot(tables, ts)
    codes = snap.rows[mine]
    frames = []
    for name, builder in FAMILY_BUILDERS.items():
        if name == "network":
            frames.append(build_network_features_for(tables, ts, config, codes))
        else:
            frames.append(builder(tables, ts, config).loc[mine])
    out = pd.concat(frames, axis=1)
    out.index.name = "member_id"
    for column, dtype in out.dtypes.items():
        if dtype != np.float64 and dtype != np.int64:
            out[column] = out[column].astype(np.float64)
    return out
