"""The simulator's oracle in the form training takes it.

Training (:func:`models.train.train_target`) never imports the simulator: it takes any
:class:`models.train.Oracle`, a callable that scores the holdout rows with the data's true
probabilities. Whoever loads a data source that may be simulated (the command line, the flows,
the benchmarks) builds one here with :func:`oracle_for`, which gives ``None`` for any source that
is not a folder written by :func:`simulator.community.write_simulation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.labels import LabelConfig
from features.tables import Tables
from simulator.community import read_latent
from simulator.truth import compute_truth_many

__all__ = ["SimulatedOracle", "oracle_for", "TRUTH_COLUMN"]

#: The truth column of each target.
TRUTH_COLUMN = {"readiness": "p_becomes_ambassador", "disengagement": "p_disengages"}


@dataclass(frozen=True, eq=False)
class SimulatedOracle:
    """The simulator's fair oracle (:func:`simulator.truth.compute_truth`) for one community.

    Attributes:
        latent: The community's latent table (:func:`simulator.community.read_latent`), with
            its simulation config in ``attrs["simulation_config"]``.
    """

    latent: pd.DataFrame

    def __call__(
        self, tables: Tables, target: str, labels: LabelConfig, holdout: pd.DataFrame
    ) -> np.ndarray:
        """True probability of ``target`` for each ``holdout`` row (``member_id``, ``as_of``),
        in row order, under the horizons and core role of ``labels``; NaN for a row the latent
        state does not know.

        Raises:
            KeyError: If ``target`` is not a target.
            ContractError: If the latent table lacks columns or members of ``tables``.
            TargetUnavailable: If ``tables`` has no roles table.
        """
        column = TRUTH_COLUMN[target]
        dates = [pd.Timestamp(d) for d in sorted(holdout["as_of"].unique())]
        truth = compute_truth_many(
            tables,
            self.latent,
            dates,
            horizon_days=labels.horizon_days,
            readiness_horizon_days=labels.readiness_horizon_days,
            core_role=labels.core_role,
        )
        truth["as_of"] = pd.to_datetime(truth["as_of"]).astype(holdout["as_of"].dtype)
        merged = holdout[["member_id", "as_of"]].merge(
            truth[["member_id", "as_of", column]],
            on=["member_id", "as_of"],
            how="left",
            validate="one_to_one",
        )
        return merged[column].to_numpy(dtype=np.float64)


def oracle_for(source: str | Path | None) -> SimulatedOracle | None:
    """The simulator's oracle for a data source, or ``None`` when it is not a simulated folder.

    Args:
        source: A folder, a URL, or ``None``.

    Raises:
        ContractError: If the folder is a simulation output but its latent table is missing.
    """
    if source is None:
        return None
    latent = read_latent(source)
    return None if latent is None else SimulatedOracle(latent)
