"""What the test suites share: service checks, waiting, local servers and fakes.

A plain package, so test modules import helpers from here and never from
`conftest.py` or from one another; `conftest.py` files hold fixtures only.
"""
