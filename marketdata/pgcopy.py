"""PostgreSQL fast paths for bars: COPY-based upsert and a binary array read into numpy.

Both are one round trip of bulk data; they are what makes 1M-bar loads and 50k-bar reads
fast (see bench/). SQLite never gets here: services/selectors use the ORM there.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import psycopg
from django.db import IntegrityError, connection, transaction
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format

from marketdata.validation import BAR_COLUMNS, PRICE_COLUMNS

STAGE_TABLE = "marketdata_bar_stage"
FLOAT_STAGE_TABLE = "marketdata_bar_stage_f8"
_STAGE_DDL = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} (
    "timestamp" timestamptz NOT NULL,
    open numeric(18, 6) NOT NULL, high numeric(18, 6) NOT NULL,
    low numeric(18, 6) NOT NULL, close numeric(18, 6) NOT NULL,
    volume bigint NOT NULL
) ON COMMIT DELETE ROWS
"""
# float64 frames travel as binary float8 (no text formatting in Python at all) and are
# rounded to NUMERIC(18, 6) by the server; PostgreSQL converts float8 to numeric through
# 15 significant digits, the same value as the float's shortest repr for any real price.
_FLOAT_STAGE_DDL = f"""
CREATE TEMP TABLE IF NOT EXISTS {FLOAT_STAGE_TABLE} (
    "timestamp" timestamptz NOT NULL,
    open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL,
    volume bigint NOT NULL
) ON COMMIT DELETE ROWS
"""
# One statement: insert the new rows, update only rows whose values differ, and count
# both (xmax = 0 marks a freshly inserted row). Unchanged rows are neither written nor
# returned, so a re-load of the same data writes nothing.
_UPSERT = """
WITH upserted AS (
    INSERT INTO stock_data (stock_id, timeframe, "timestamp", open, high, low, close, volume)
    SELECT %s, %s, s."timestamp", s.open::numeric(18, 6), s.high::numeric(18, 6), s.low::numeric(18, 6),
           s.close::numeric(18, 6), s.volume
    FROM {stage} s
    ON CONFLICT (stock_id, timeframe, "timestamp") DO UPDATE SET
        open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
        close = EXCLUDED.close, volume = EXCLUDED.volume
    WHERE (stock_data.open, stock_data.high, stock_data.low, stock_data.close, stock_data.volume)
          IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
"""
_INSERT = """
INSERT INTO stock_data (stock_id, timeframe, "timestamp", open, high, low, close, volume)
SELECT %s, %s, s."timestamp", s.open::numeric(18, 6), s.high::numeric(18, 6), s.low::numeric(18, 6),
       s.close::numeric(18, 6), s.volume
FROM {stage} s
"""
_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8  # signature, flags, extension length
_COPY_TRAILER = b"\xff\xff"


def _text_column(column: pd.Series) -> list[str]:
    # Floats go through their shortest repr (what the user sees); Decimals and strings
    # keep every digit they carry. PostgreSQL rounds to NUMERIC(18, 6) on the way in.
    if column.dtype.kind == "f":
        return list(map(repr, column.tolist()))
    if column.dtype.kind in "iu":
        return list(map(str, column.tolist()))
    return [str(v).strip() for v in column.tolist()]


def copy_text(frame: pd.DataFrame, prefix: str | None = None) -> str:
    """``frame`` (validated, UTC index) as COPY text rows: timestamp, OHLC, volume."""
    times = np.datetime_as_string(
        frame.index.tz_convert("UTC").tz_localize(None).values, unit="us", timezone="UTC"
    ).tolist()
    columns = [times, *(_text_column(frame[c]) for c in PRICE_COLUMNS)]
    columns.append(list(map(str, frame["volume"].astype("int64").tolist())))
    if prefix is not None:
        columns.insert(0, [prefix] * len(times))
    if not times:
        return ""
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


_FLOAT_ROW = np.dtype(
    [("n", ">i2"), ("l0", ">i4"), ("ts", ">i8")]
    + [item for i, c in enumerate(PRICE_COLUMNS, 1) for item in ((f"l{i}", ">i4"), (c, ">f8"))]
    + [("l5", ">i4"), ("volume", ">i8")]
)


def copy_binary(frame: pd.DataFrame) -> bytes:
    """``frame`` (float64 prices) as a binary COPY stream for the float8 staging table."""
    rows = np.empty(len(frame), dtype=_FLOAT_ROW)
    rows["n"] = 6
    for name in ("l0", "l1", "l2", "l3", "l4", "l5"):
        rows[name] = 8
    micros = frame.index.tz_convert("UTC").as_unit("us").asi8
    rows["ts"] = micros - _PG_EPOCH_US
    for column in PRICE_COLUMNS:
        rows[column] = frame[column].to_numpy(dtype="float64")
    rows["volume"] = frame["volume"].to_numpy(dtype="int64")
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def upsert_bars(stock_id: int, timeframe: str, frame: pd.DataFrame) -> tuple[int, int]:
    """COPY ``frame`` into a temp staging table, then one INSERT ... ON CONFLICT.

    When no stored bar falls in the frame's time range (a first load, or new bars after
    the last stored one) a plain INSERT ... SELECT does the job about 15 % faster; should
    a concurrent writer insert one of those bars meanwhile, its unique violation rolls
    back to a savepoint and the upsert runs instead. Returns (inserted, updated). Must run
    inside a transaction (the stage empties on commit).
    """
    binary = all(frame[c].dtype.kind == "f" for c in PRICE_COLUMNS)
    stage, ddl = (FLOAT_STAGE_TABLE, _FLOAT_STAGE_DDL) if binary else (STAGE_TABLE, _STAGE_DDL)
    options = " (FORMAT BINARY)" if binary else ""
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(ddl)
        raw.execute(f"TRUNCATE {stage}")
        columns = '("timestamp", open, high, low, close, volume)'
        with raw.copy(f"COPY {stage} {columns} FROM STDIN{options}") as copy:
            copy.write(copy_binary(frame) if binary else copy_text(frame))
        if not range_has_bars(stock_id, timeframe, frame.index[0], frame.index[-1]):
            try:
                with transaction.atomic():
                    cursor.execute(_INSERT.format(stage=stage), (stock_id, timeframe))
                    return cursor.rowcount, 0
            except IntegrityError:
                pass  # a concurrent ingest stored some of these bars first: upsert instead
        raw.execute(_UPSERT.format(stage=stage), (stock_id, timeframe))
        inserted, updated = raw.fetchone()
    return int(inserted), int(updated)


def range_has_bars(stock_id: int, timeframe: str, first: datetime, last: datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT EXISTS (SELECT 1 FROM stock_data WHERE stock_id = %s AND timeframe = %s AND "timestamp" '
            "BETWEEN %s AND %s)",
            (stock_id, timeframe, first, last),
        )
        return bool(cursor.fetchone()[0])


class _RawBinary(Loader):
    """Hand an array column over as its binary wire bytes; numpy parses them in one go."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Buffer:
        return data


_TIMESTAMPTZ_ARRAY, _FLOAT8_ARRAY = 1185, 1022  # PostgreSQL type OIDs
_ARRAY_QUERY = """
SELECT array_agg("timestamp"), array_agg(open::float8), array_agg(high::float8),
       array_agg(low::float8), array_agg(close::float8), array_agg(volume::float8)
FROM stock_data WHERE stock_id = %s AND timeframe = %s {conditions}
"""


def _array_values(data: Buffer, dtype: str) -> np.ndarray:
    """The elements of a 1-dimensional binary PostgreSQL array without NULLs.

    Layout: ndim, has-nulls flag, element OID (int32 each), then per dimension its size
    and lower bound, then each element as int32 length + value.
    """
    view = memoryview(data)
    ndim = int.from_bytes(view[0:4], "big")
    count = int.from_bytes(view[12:16], "big") if ndim else 0
    element = np.dtype([("length", ">i4"), ("value", dtype)])
    return np.frombuffer(view, element, count=count, offset=12 + 8 * ndim)["value"]


def read_bars(stock_id: int, timeframe: str, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """One query: each column aggregated server-side into one binary array, parsed by numpy.

    A binary ``COPY ... TO STDOUT`` sends one message per row, and iterating 50,000 of
    them in Python costs more than the query itself; six arrays in one row do not.
    """
    conditions, params = [], [stock_id, timeframe]
    if start is not None:
        conditions.append('AND "timestamp" >= %s')
        params.append(start)
    if end is not None:
        conditions.append('AND "timestamp" <= %s')
        params.append(end)
    connection.ensure_connection()
    # A server-binding cursor on Django's own connection (same transaction): Django's
    # default client-side cursors cannot return binary results.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.adapters.register_loader(_TIMESTAMPTZ_ARRAY, _RawBinary)
        cursor.adapters.register_loader(_FLOAT8_ARRAY, _RawBinary)
        cursor.execute(_ARRAY_QUERY.format(conditions=" ".join(conditions)), params, binary=True)
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return empty_frame()
    micros = _array_values(row[0], ">i8").astype("int64") + _PG_EPOCH_US
    columns = {
        c: _array_values(data, ">f8").astype("float64") for c, data in zip(BAR_COLUMNS, row[1:], strict=True)
    }
    return frame_from_arrays(micros, columns)


def frame_from_arrays(micros: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Bars from Unix-microsecond open times and float64 columns, sorted by time."""
    if len(micros) > 1 and not (np.diff(micros) > 0).all():
        order = np.argsort(micros, kind="stable")  # the aggregate has no ORDER BY: sort here
        micros = micros[order]
        columns = {c: v[order] for c, v in columns.items()}
    index = pd.DatetimeIndex(micros.view("datetime64[us]"), name="timestamp").tz_localize("UTC")
    return pd.DataFrame(columns, index=index)


def empty_frame() -> pd.DataFrame:
    index = pd.DatetimeIndex([], dtype="datetime64[us, UTC]", name="timestamp")
    return pd.DataFrame({c: np.array([], dtype="float64") for c in BAR_COLUMNS}, index=index)


IND_STAGE_TABLE = "marketdata_indicator_stage"
_IND_STAGE_DDL = f"""
CREATE TEMP TABLE IF NOT EXISTS {IND_STAGE_TABLE} (
    "timestamp" timestamptz NOT NULL, value double precision, "values" jsonb NOT NULL
) ON COMMIT DELETE ROWS
"""
_IND_UPSERT = f"""
WITH upserted AS (
    INSERT INTO indicators
        (stock_id, timeframe, "timestamp", name, params_key, parameters, value, "values", metadata)
    SELECT %s, %s, s."timestamp", %s, %s, %s::jsonb, s.value, s."values", %s::jsonb FROM {IND_STAGE_TABLE} s
    ON CONFLICT (stock_id, timeframe, "timestamp", name, params_key) DO UPDATE SET
        parameters = EXCLUDED.parameters, value = EXCLUDED.value,
        "values" = EXCLUDED."values", metadata = EXCLUDED.metadata
    WHERE (indicators.parameters, indicators.value, indicators."values", indicators.metadata)
          IS DISTINCT FROM (EXCLUDED.parameters, EXCLUDED.value, EXCLUDED."values", EXCLUDED.metadata)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
"""


_IND_INSERT = _IND_UPSERT.split("ON CONFLICT")[0].replace("WITH upserted AS (", "")


def _indicator_range_has_rows(
    stock_id: int, timeframe: str, name: str, params_key: str, times: pd.DatetimeIndex
) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM indicators WHERE stock_id = %s AND timeframe = %s AND name = %s "
            'AND params_key = %s AND "timestamp" BETWEEN %s AND %s)',
            (stock_id, timeframe, name, params_key, times[0], times[-1]),
        )
        return bool(cursor.fetchone()[0])


def upsert_indicator_rows(
    stock_id: int,
    timeframe: str,
    name: str,
    params_key: str,
    parameters_json: str,
    metadata_json: str,
    times: pd.DatetimeIndex,
    values: list[float],
    values_json: list[str],
) -> tuple[int, int]:
    """COPY one indicator's rows into a staging table, then one INSERT ... ON CONFLICT."""
    stamps = np.datetime_as_string(
        times.tz_convert("UTC").tz_localize(None).values, unit="us", timezone="UTC"
    )
    payload = "".join(
        f"{t}\t{v!r}\t{j}\n" for t, v, j in zip(stamps.tolist(), values, values_json, strict=True)
    )
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(_IND_STAGE_DDL)
        raw.execute(f"TRUNCATE {IND_STAGE_TABLE}")
        with raw.copy(f'COPY {IND_STAGE_TABLE} ("timestamp", value, "values") FROM STDIN') as copy:
            copy.write(payload)
        params = (stock_id, timeframe, name, params_key, parameters_json, metadata_json)
        if len(times) and not _indicator_range_has_rows(stock_id, timeframe, name, params_key, times):
            try:
                with transaction.atomic():  # same fast path and fallback as for bars
                    cursor.execute(_IND_INSERT, params)
                    return cursor.rowcount, 0
            except IntegrityError:
                pass
        raw.execute(_IND_UPSERT, params)
        inserted, updated = raw.fetchone()
    return int(inserted), int(updated)
