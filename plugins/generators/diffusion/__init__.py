"""The diffusion family: scoehr and raw-diffusion, with their shared VP-SDE, score network and samplers."""
