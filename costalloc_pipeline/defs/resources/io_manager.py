"""Stores pandas DataFrames as Parquet: in the local data folder, or in an S3 bucket when one is configured.

Layout: `<base>/<asset key path>/<partition>.parquet` for a partitioned asset, `<base>/<asset key
path>.parquet` otherwise. The Arrow schema travels in the file, so an empty frame keeps its columns
and dtypes.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from costalloc_pipeline.defs.resources.s3 import RepositoryS3
from costalloc_pipeline.errors import BadRequest, NotFound

# A partition key becomes a file name: nothing that could climb out of the asset's folder.
_SAFE_PARTITION = re.compile(r"[A-Za-z0-9_.:=-]+")
COMPRESSION = "zstd"


class ParquetIOManager(dg.ConfigurableIOManager):
    """Parquet files under `base_dir`, or objects under `s3://<s3_bucket>/<s3_prefix>/` when `s3_bucket` is set."""

    base_dir: str = "data/storage"
    s3_bucket: str = ""
    s3_prefix: str = "storage"
    # Needed only with s3_bucket.
    s3: RepositoryS3 | None = None

    def _relative_path(self, context: dg.InputContext | dg.OutputContext) -> str:
        parts = list(context.asset_key.path)
        if context.has_asset_partitions:
            partition = context.asset_partition_key
            if not _SAFE_PARTITION.fullmatch(partition) or partition in {".", ".."}:
                raise BadRequest(f"partition key {partition!r} cannot name a Parquet file")
            parts.append(partition)
        return "/".join(parts) + ".parquet"

    def _s3_key(self, relative: str) -> str:
        return f"{self.s3_prefix.strip('/')}/{relative}" if self.s3_prefix.strip("/") else relative

    def _s3_client(self) -> Any:
        if self.s3 is None:
            raise BadRequest("ParquetIOManager has an s3_bucket but no s3 resource")
        return self.s3.get_client()

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise BadRequest(f"ParquetIOManager stores pandas DataFrames, not {type(obj).__name__}")
        table = pa.Table.from_pandas(obj, preserve_index=False)
        relative = self._relative_path(context)
        if self.s3_bucket:
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression=COMPRESSION)
            key = self._s3_key(relative)
            self._s3_client().put_object(Bucket=self.s3_bucket, Key=key, Body=sink.getvalue().to_pybytes())
            location: dg.MetadataValue[str] = dg.MetadataValue.url(f"s3://{self.s3_bucket}/{key}")
        else:
            path = Path(self.base_dir) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside, then renamed: a reader never sees half a file.
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".parquet.tmp")
            os.close(handle)
            try:
                pq.write_table(table, temporary, compression=COMPRESSION)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            location = dg.MetadataValue.path(str(path.resolve()))
        context.add_output_metadata({"storage": location, "stored_rows": dg.MetadataValue.int(table.num_rows)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        relative = self._relative_path(context)
        if self.s3_bucket:
            key = self._s3_key(relative)
            try:
                body = self._s3_client().get_object(Bucket=self.s3_bucket, Key=key)["Body"].read()
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                    raise NotFound(f"no stored dataset at s3://{self.s3_bucket}/{key}; materialize it first") from None
                raise
            table = pq.read_table(pa.BufferReader(body))
        else:
            path = Path(self.base_dir) / relative
            if not path.exists():
                raise NotFound(f"no stored dataset at {path}; materialize it first")
            table = pq.read_table(path)
        return table.to_pandas()
