"""Mutation testing of the decision modules (`make mutation`); see docs/testing.md."""
