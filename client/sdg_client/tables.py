"""A job's rows as an Arrow table or a DataFrame: a Parquet file as written (its columns typed by
the gateway), anything else from the rows as the gateway reads them back (GET /jobs/{id}/rows),
one column per property of the job's schema.json. pandas and pyarrow are imported here, only
when asked for."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any


def require(module: str, extra: str, what: str) -> Any:
    """Imports an optional dependency, or says which extra brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{what} needs {module.split('.')[0]}: pip install 'sdg-client[{extra}]'") from err


@dataclass(frozen=True)
class Table:
    """A job's rows (or an images job's metadata lines), with the columns its schema lists (None:
    the keys the rows have), and its Parquet file's bytes when it wrote one."""

    rows: list[dict[str, Any]]
    schema: dict[str, Any] | None
    parquet: bytes | None = None

    def columns(self) -> list[str]:
        if self.schema is not None:
            return list(self.schema.get("properties", {}))
        return list(dict.fromkeys(key for row in self.rows for key in row))

    def arrow(self) -> Any:
        pa = require("pyarrow", "arrow", "to_arrow()")
        if self.parquet is not None:
            return require("pyarrow.parquet", "arrow", "reading parquet").read_table(io.BytesIO(self.parquet))
        # Column by column: a field the first row leaves out still gets its column.
        return pa.table({name: [row.get(name) for row in self.rows] for name in self.columns()})

    def pandas(self) -> Any:
        pd = require("pandas", "pandas", "to_pandas()")
        if self.parquet is not None:
            require("pyarrow", "pandas", "reading parquet")
            return pd.read_parquet(io.BytesIO(self.parquet))
        return pd.DataFrame.from_records(self.rows, columns=self.columns())
