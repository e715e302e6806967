"""Training from plain text files: data, the training loop and evaluation in bits per byte."""
