"""The chaos run (`python -m tests.chaos.chaos`, `make chaos`, `make chaos-ci`); see chaos.py."""
