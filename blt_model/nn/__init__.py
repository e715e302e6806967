"""The network: layers, attention, transformer stacks with their caches, hash n-gram embeddings,
the entropy model, local encoder, global transformer, local decoder and the BLT module that
joins them (docs/architecture.md, sections 1-4)."""
