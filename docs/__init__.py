"""The documentation sources; a package so that ``python -m docs.gen_config`` and the tests import its generator."""
