"""Metrics on arrays of crystals: validity, distribution EMDs, Fréchet distance."""
