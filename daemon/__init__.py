"""d2stream device side: runtime for exported Detectron2 models and the camera daemon.

Nothing here imports torch, detectron2 or onnx graph tooling; export commands import
``export_tools`` lazily.
"""

from d2common import __version__

__all__ = ["__version__"]
