"""What both sides of d2stream share, with nothing above it.

The device side (``daemon``) and the desktop export tools (``export_tools``) both import this
package; it imports neither. It holds the user-facing errors, the model metadata an exported
model carries, the image reading and pre-processing both sides must do the same way, and the
names and cache paths of model-zoo entries.
"""

__version__ = "0.1.0"
