"""Shared VP-SDE, score network and samplers of the diffusion generators."""
