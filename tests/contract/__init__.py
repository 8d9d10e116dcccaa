"""The connector contract: the rules of ``LmsTarget`` and ``HrisSource`` (sync/connectors/
base.py) as tests every connector must pass, generated per connector kind from a rig
(how to start its real server on 127.0.0.1 and build the connector from its config).
See docs/testing.md, "Connector contract suite"."""
