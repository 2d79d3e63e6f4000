"""Contract-faithful fake CRM servers (loopback only, port 0).

Used by the tests and by the push benchmarks; they live here rather than under ``tests/`` so that
the benchmarks never import the test suite, and outside the installed packages because nothing
in production needs them.
"""
