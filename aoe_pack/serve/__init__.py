"""Servers that answer from a verified repository: the decision service and the AoE bridge."""
