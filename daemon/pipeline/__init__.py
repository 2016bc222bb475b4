"""The daemon's pipeline: producers read cameras into bounded per-camera queues, a worker process
runs the model, the runner hands results to the event stage and the sinks."""
