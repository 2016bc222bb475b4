"""The ``d2stream`` command line."""
