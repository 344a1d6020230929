"""`python -m crystal_metrics` (and `torchrun ... -m crystal_metrics stats ...`): the CLI."""
from .cli import main

main(prog_name="crystal-metrics")
