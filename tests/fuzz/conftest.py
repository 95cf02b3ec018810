"""Fuzzing runs on the property tests' moto account (one per module) and honours CRRMON_FUZZ_EXAMPLES."""

from tests.property.conftest import moto_account  # noqa: F401  (a fixture)
