"""``python -m aoe_pack`` runs the command line."""

from aoe_pack.cli import main

main()
