"""The test suite is a package: pytest then puts the repository root on sys.path (its default
`prepend` import mode), test modules are `tests.<package>.test_x` so same-named files in two
folders do not clash, and helpers import as `tests.helpers.<module>`."""
