"""The load run (`python -m tests.load.run`, `make load`); see run.py and locustfile.py."""
