"""The VAE family: ``synthvae`` (a SynthVAE-style VAE, optionally trained with DP-SGD) and ``cvae`` (its conditional twin)."""
