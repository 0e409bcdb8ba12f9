"""Everything a job writes under SDG_OUTPUT_DIR: its folder, data files in four formats, the image
dataset (PNGs, imagefolder metadata, COCO annotations), schema.json and manifest.json."""

from gateway.outputs.folders import create_job_folder, display_path, list_files, write_json_atomic
from gateway.outputs.images import ImageDatasetWriter, salvage_images
from gateway.outputs.tables import RowSpool, RowWriter, arrow_schema, salvage_rows, spooled_rows

__all__ = [
    "ImageDatasetWriter",
    "RowSpool",
    "RowWriter",
    "arrow_schema",
    "create_job_folder",
    "display_path",
    "list_files",
    "salvage_images",
    "salvage_rows",
    "spooled_rows",
    "write_json_atomic",
]
