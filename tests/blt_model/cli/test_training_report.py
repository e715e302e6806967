"""`blt train`'s reporter: the training events as rich output (notes, data, bar, tables, summary)."""

from __future__ import annotations

import math

from rich.console import Console

from blt_model.cli.report import RichTrainingReporter
from blt_model.train import DataStats, DataSummary, StageOutcome


def test_the_rich_reporter_renders_every_event():
    con = Console(record=True, width=120, force_terminal=False)
    r = RichTrainingReporter(con)
    r.on_note("the previous contents of runs/x were moved to runs/x.old-1 [sic]")
    r.on_note("small data: only 114 training bytes", warning=True)
    train = DataStats(files=1, documents=1, bytes=114, skipped_paths=["bin/blob.dat"])
    r.on_data(DataSummary(train, None, valid_bytes=6, skipped_short=2, min_text_length=10))
    r.on_stage("blt", 3, 0)
    for step in (1, 2, 3):
        r.on_step(step, 2.0 / step, 100, 1e-3)
    r.on_validation("blt", 3, {"loss": 1.0, "bits_per_byte": 1 / math.log(2), "accuracy": 0.5})
    r.on_stage_end("blt", StageOutcome("max_steps", 3, 1.0, 1))
    r.on_stage("entropy", None, 0)
    r.on_stage_end("entropy", None)  # an error: the bar stops, no summary line
    out = con.export_text()
    assert "[sic]" in out and "small data: only 114 training bytes" in out
    assert "train: 1 documents, 114 bytes from 1 files; 2 shorter than 10 bytes skipped" in out
    assert "valid: held out; 6 bytes" in out and "skipped bin/blob.dat" in out
    assert "blt: validation at step 3" in out and "50.00%" in out
    assert ("blt: stopped (max_steps) at step 3; best validation loss 1.0000 nats/byte (1.4427 bits/byte); "
            "1 non-finite steps skipped") in out
    assert "entropy: stopped" not in out
