"""Running a trained model: sampling, the generation engines and streaming
(docs/architecture.md, section 5)."""
