"""Official Detectron2 model-zoo entries by name: catalog, weight downloads, one-step export."""

from export_tools.zoo.catalog import ZooEntry, ZooError, all_entries, get_entry
from export_tools.zoo.download import Checksum, ChecksumError, DownloadError, cache_dir, fetch
from export_tools.zoo.export import export_zoo_model, fetch_weights, zoo_onnx_path

__all__ = [
    "Checksum", "ChecksumError", "DownloadError", "ZooEntry", "ZooError", "all_entries",
    "cache_dir", "export_zoo_model", "fetch", "fetch_weights", "get_entry", "zoo_onnx_path",
]
