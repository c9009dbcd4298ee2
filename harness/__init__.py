"""joulebench: how much accuracy does each joule buy?

Data flow, one module per step: suite (YAML -> Suite) -> plan (Suite -> RunSpecs) ->
train / compress -> measure (energy windows) -> records (JSONL) -> report (tables).
"""

__version__ = "0.1.0"
