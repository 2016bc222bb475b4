"""Inference backends: the engine that runs an exported ``.onnx`` graph on the CPU.

``onnxruntime`` is the default and always installed; ``openvino`` is an alternative CPU engine
(``pip install 'd2stream[openvino]'``). Both run the same standard-ONNX file and give the same
outputs within float tolerance.

    backend = create_backend("openvino", "model.onnx", BackendOptions(num_threads=2))
    outputs = backend.run({"image": x})
"""

from daemon.inference.backends.base import (
    BACKENDS,
    DEFAULT_BACKEND,
    Backend,
    BackendOptions,
    RemoteOptions,
    available_backends,
    create_backend,
)

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Backend", "BackendOptions", "RemoteOptions",
           "available_backends", "create_backend"]
