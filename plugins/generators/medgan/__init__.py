"""The medGAN family: medgan, medwgan and medbgan, one implementation that differs only in the adversarial loss."""
