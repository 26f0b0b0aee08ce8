"""Speech servers used by the tests and scripts/develop."""
