"""Everything a job writes under SDG_OUTPUT_DIR: its folder, data files in four formats, the image
dataset (PNGs, imagefolder metadata, COCO annotations), schema.json, manifest.json and quality.json."""

from gateway.outputs.folders import QUALITY_FILE, Spool, create_job_folder, display_path, json_lines, list_files, spooled, write_json_atomic
from gateway.outputs.images import ImageDatasetWriter, salvage_images
from gateway.outputs.tables import RowWriter, arrow_schema, salvage_rows

__all__ = [
    "QUALITY_FILE",
    "ImageDatasetWriter",
    "RowWriter",
    "Spool",
    "arrow_schema",
    "create_job_folder",
    "display_path",
    "json_lines",
    "list_files",
    "salvage_images",
    "salvage_rows",
    "spooled",
    "write_json_atomic",
]
