"""Run many `blt` commands cheaply under a memory limit: a server process imports torch once,
sets RLIMIT_AS to the address space in use then plus 2 GB, and forks one child per command,
which runs `blt_model.cli.commands` exactly as the `blt` script does (exit status, stdout, stderr,
uncaught exceptions printed by Python's own hook) under a timeout.

Protocol: one JSON list of jobs on stdin, one JSON list of results on stdout. A job is
{"argv": [...], "argv_hex": [...] (bytes arguments), "cwd": str, "out": str, "err": str,
 "timeout": float, "fsize": int | null}; a result is {"status": int, "timed_out": bool}
(status -N: killed by signal N).
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sys
import time

HEADROOM = 2 << 30


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmSize:\s+(\d+)", f.read()).group(1)) * 1024


def _child(job: dict) -> None:
    os.chdir(job["cwd"])
    if job.get("fsize") is not None:  # a "full disk": writes past this size fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (job["fsize"], job["fsize"]))
    for fd, path, mode in ((0, os.devnull, os.O_RDONLY), (1, job["out"], os.O_WRONLY | os.O_CREAT),
                           (2, job["err"], os.O_WRONLY | os.O_CREAT)):
        os.dup2(os.open(path, mode, 0o644), fd)
    for k, v in job.get("env", {}).items():
        os.environ[k] = v
    argv = list(job.get("argv", [])) + [os.fsdecode(bytes.fromhex(h)) for h in job.get("argv_hex", [])]
    sys.argv = ["blt", *argv]
    code = 1
    try:
        from blt_model.cli.commands import main

        code = main(argv)
    except SystemExit as e:  # what sys.exit(main()) in the blt script does with it
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - the interpreter would print the traceback
        sys.excepthook(*sys.exc_info())
        code = 1
    finally:
        for s in (sys.stdout, sys.stderr):
            try:
                s.flush()
            except Exception:  # noqa: BLE001
                pass
    os._exit(code)


def serve(jobs: list[dict], parallel: int = 2) -> list[dict]:
    results: list[dict | None] = [None] * len(jobs)
    running: dict[int, tuple[int, float]] = {}
    todo = list(range(len(jobs)))
    started: dict[int, float] = {}
    while todo or running:
        while todo and len(running) < parallel:
            i = todo.pop(0)
            pid = os.fork()
            if pid == 0:
                _child(jobs[i])
            running[pid] = (i, time.monotonic() + jobs[i].get("timeout", 60))
            started[i] = time.monotonic()
        for pid, (i, deadline) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            timed_out = False
            if not done and time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                done, timed_out = pid, True
            if done:
                code = os.waitstatus_to_exitcode(status)
                results[i] = {"status": code, "timed_out": timed_out, "seconds": time.monotonic() - started[i]}
                del running[pid]
        time.sleep(0.01)
    return results  # type: ignore[return-value]


if __name__ == "__main__":
    import torch  # noqa: F401 - the limit is measured after importing torch, as in the issue

    limit = _vm_size() + HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    request = json.load(sys.stdin)
    out = serve(request["jobs"], request.get("parallel", 2))
    json.dump({"results": out, "rlimit_as": limit}, sys.stdout)
