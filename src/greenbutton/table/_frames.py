"""The readings table as pandas and Arrow (extra ``[frames]``), built from the columns.

Values are scaled vectorised from the raw integer arrays; no Python object is made per
reading. Both libraries are imported lazily, so the SDK works without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ..models import ABSENT, ABSENT32, COLUMNS, DEFAULT_COST_SCALE, Document, Series
from ..models._rows import scale_factors
from ..parse import Limits, Source, parse, series_key

if TYPE_CHECKING:
    import pandas
    import pyarrow

__all__ = ["read_arrow", "read_frame", "to_arrow", "to_pandas", "write_parquet"]


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ConfigurationError(
            f"{module} is not installed; install it with: pip install 'greenbutton[frames]'"
        ) from None


def to_pandas(document: Document, *, cost_scale: int = DEFAULT_COST_SCALE) -> pandas.DataFrame:
    """The readings table of a parsed document (``start`` tz-aware UTC)."""
    pd = _need("pandas")
    np = _need("numpy")
    parts = []
    for up in document.usage_points:
        for mr in up.meter_readings:
            cols = mr.readings
            n = len(cols)
            if not n:
                continue
            s = Series.of(series_key(up), series_key(mr), mr.reading_type, cost_scale)
            raw = np.frombuffer(cols.value, dtype=np.int64)
            raw_missing = raw == ABSENT
            cost = np.frombuffer(cols.cost, dtype=np.int64)
            cost_missing = cost == ABSENT
            quality = np.frombuffer(cols.quality, dtype=np.int32)
            tou = np.frombuffer(cols.tou, dtype=np.int32)
            q = np.where(quality == ABSENT32, None, quality.astype(str)).astype(object)
            if s.default_quality is not None:
                q[quality == ABSENT32] = s.default_quality
            for i, codes in cols.extra_quality.items():
                q[i] = ";".join(map(str, codes))
            value = _scaled(np, raw, s.multiplier)
            value[raw_missing] = np.nan
            costv = _scaled(np, cost, s.cost_scale)
            costv[cost_missing] = np.nan
            frame = pd.DataFrame(
                {
                    "usage_point": pd.Series([s.usage_point] * n, dtype="string"),
                    "meter_reading": pd.Series([s.meter_reading] * n, dtype="string"),
                    "start": pd.to_datetime(
                        np.frombuffer(cols.start, dtype=np.int64), unit="s", utc=True
                    ),
                    "duration": np.frombuffer(cols.duration, dtype=np.int64),
                    "raw_value": pd.array(np.where(raw_missing, 0, raw), dtype="Int64"),
                    "value": value,
                    "uom": pd.Series([s.uom] * n, dtype="string"),
                    "flow_direction": pd.Series([_s(s.flow_direction)] * n, dtype="string"),
                    "kind": pd.Series([_s(s.kind)] * n, dtype="string"),
                    "commodity": pd.Series([_s(s.commodity)] * n, dtype="string"),
                    "interval_length": pd.array([s.interval_length] * n, dtype="Int64"),
                    "cost": costv,
                    "currency": pd.Series(np.where(cost_missing, None, s.currency), dtype="string"),
                    "quality": pd.Series(q, dtype="string"),
                    "tou": pd.array(np.where(tou == ABSENT32, 0, tou), dtype="Int64"),
                }
            )
            frame.loc[raw_missing, "raw_value"] = pd.NA
            frame.loc[tou == ABSENT32, "tou"] = pd.NA
            parts.append(frame)
    if not parts:
        return _empty(pd)
    result: pandas.DataFrame = pd.concat(parts, ignore_index=True)
    return result


def _s(v: str | int | None) -> str | None:
    return None if v is None else str(v)


def _scaled(np: Any, raw: Any, exponent: int) -> Any:
    # Divide by an exact power of ten: correctly rounded, like the row path in _table, and
    # from the same bounded table of powers.
    mul, div = scale_factors(exponent)
    if div == 1:
        return raw.astype(np.float64) * float(mul)
    return raw.astype(np.float64) / float(div)


def _empty(pd: Any) -> pandas.DataFrame:
    dtypes = {
        "usage_point": "string", "meter_reading": "string", "start": "datetime64[ns, UTC]",
        "duration": "int64", "raw_value": "Int64", "value": "float64", "uom": "string",
        "flow_direction": "string", "kind": "string", "commodity": "string",
        "interval_length": "Int64", "cost": "float64", "currency": "string",
        "quality": "string", "tou": "Int64",
    }  # fmt: skip
    empty: pandas.DataFrame = pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in COLUMNS})
    return empty


def read_frame(
    source: Source, *, limits: Limits | None = None, cost_scale: int = DEFAULT_COST_SCALE
) -> pandas.DataFrame:
    """Parse ``source`` and return its readings table as a pandas DataFrame."""
    return to_pandas(parse(source, limits=limits), cost_scale=cost_scale)


def to_arrow(document: Document, *, cost_scale: int = DEFAULT_COST_SCALE) -> pyarrow.Table:
    """The readings table of a parsed document as a pyarrow Table."""
    pa = _need("pyarrow")
    return pa.Table.from_pandas(to_pandas(document, cost_scale=cost_scale), preserve_index=False)


def read_arrow(
    source: Source, *, limits: Limits | None = None, cost_scale: int = DEFAULT_COST_SCALE
) -> pyarrow.Table:
    """Parse ``source`` and return its readings table as a pyarrow Table."""
    return to_arrow(parse(source, limits=limits), cost_scale=cost_scale)


def write_parquet(document: Document, path: str, *, cost_scale: int = DEFAULT_COST_SCALE) -> None:
    """Write the readings table of ``document`` to a Parquet file (atomically).

    The same writer as ``greenbutton export -o x.parquet``
    (:func:`greenbutton.table._files.write_readings`), so both files have one schema.
    """
    from ._files import document_rows, write_readings

    write_readings(document_rows(document, cost_scale=cost_scale), path, format="parquet")
