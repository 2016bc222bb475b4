"""Safe, torch-free loading of Detectron2 checkpoints (.pth torch zip archives, .pkl pickles).

>>> state, info = load_checkpoint("model_final.pth")  # doctest: +SKIP

``state`` maps parameter names to numpy arrays; ``info`` is a ``CheckpointInfo``. Checkpoints are
untrusted pickles: only an explicit allow-list of globals is accepted, each mapped to this
package's own code, so loading never executes code from the file and never imports torch.
"""

from export_tools.checkpoint.loader import DEFAULT_MAX_BYTES, CheckpointInfo, load_checkpoint
from export_tools.errors import CheckpointError

__all__ = ["DEFAULT_MAX_BYTES", "CheckpointError", "CheckpointInfo", "load_checkpoint"]
