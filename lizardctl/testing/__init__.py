"""Tools for testing lizardctl, not part of it: the dump generator the tests, the
benchmarks and the bundled example are made with."""
