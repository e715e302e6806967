"""Running a trained model (docs/architecture.md, exact incremental generation): sampling
(`sampling.SamplingConfig`), the engines with one prefill/step interface (`engine.py`, with the
caches of `state.py`) and the streaming loop written once over them (`generation.py`)."""
