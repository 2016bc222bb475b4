"""Inference backends: the engine that runs an exported ``.onnx`` graph on the CPU.

``onnxruntime`` is always installed; ``openvino`` is an alternative CPU engine
(``pip install 'd2stream[openvino]'``). Both run the same standard-ONNX file and give the same
outputs within float tolerance. The default, ``auto``, measures which installed one is fastest
for the model on this machine and caches the choice (:mod:`daemon.inference.backends.auto`).

    backend = create_backend("openvino", "model.onnx", BackendOptions(num_threads=2))
    outputs = backend.run({"image": x})
"""

from daemon.inference.backends.base import (
    BACKEND_CHOICES,
    BACKENDS,
    DEFAULT_BACKEND,
    LOCAL_BACKEND_CHOICES,
    Backend,
    BackendOptions,
    RemoteOptions,
    available_backends,
    create_backend,
)

__all__ = ["BACKENDS", "BACKEND_CHOICES", "DEFAULT_BACKEND", "LOCAL_BACKEND_CHOICES", "Backend",
           "BackendOptions", "RemoteOptions",
           "available_backends", "create_backend"]
