"""The one consent rule, shared by the data contract and the CRM push.

``true``/``1``/``yes`` and ``false``/``0``/``no`` in any case (or a boolean or 0/1 column); an
empty value means consent. Kept free of heavy imports: the push reads it without loading the
contract's validation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CONSENT_TRUE", "CONSENT_FALSE", "parse_consent"]

CONSENT_TRUE: frozenset[str] = frozenset({"true", "1", "yes"})
CONSENT_FALSE: frozenset[str] = frozenset({"false", "0", "no"})


def parse_consent(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Consent per value (bool, same index), where it is empty, and where it is none of the
    allowed values (bad; such a value reads as consent here, the caller refuses it)."""
    dtype = values.dtype
    n = len(values)
    if pd.api.types.is_bool_dtype(dtype) and not isinstance(dtype, pd.BooleanDtype):
        return values.astype(bool), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if isinstance(dtype, pd.BooleanDtype):
        missing = values.isna().to_numpy()
        return values.fillna(True).astype(bool), missing, np.zeros(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(numbers)
        yes = numbers == 1
        no = numbers == 0
    else:
        text = values.astype("str").str.strip().str.lower()
        missing = (text.isna() | text.eq("")).to_numpy(dtype=bool, na_value=True)
        yes = text.isin(CONSENT_TRUE).to_numpy(dtype=bool)
        no = text.isin(CONSENT_FALSE).to_numpy(dtype=bool)
    bad = ~missing & ~yes & ~no
    return pd.Series(~no, index=values.index), missing, bad
