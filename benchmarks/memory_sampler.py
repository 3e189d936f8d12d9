"""Peak memory of a process tree, as PSS: `python memory_sampler.py PID OUT`.

PSS (proportional set size) shares each shared page among the processes that map it, so the
sum over a parent and its forked workers is what the tree holds at once; RSS would count the
pages a fork shares with its parent twice. Polls /proc every 0.2 s while PID, its parent, lives,
and keeps the peak so far (MiB) in OUT. A process of its own, not a thread: `medmatch.parallel`
forks only when the process it forks runs no other thread.
"""

import os
import sys
import time
from pathlib import Path


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    root, out = int(sys.argv[1]), Path(sys.argv[2])
    peak = 0
    while os.getppid() == root:  # the measured process is alive (a zombie still has /proc)
        tree = [p for p in _tree(root) if p != os.getpid()]  # not the sampler itself
        peak = max(peak, sum(_pss_kib(p) for p in tree))
        # whole or not at all: the sampler is stopped at any moment, a write cut in half
        # left an empty file once (and lost a 1M run's numbers)
        partial = out.with_suffix(".partial")
        partial.write_text(str(round(peak / 1024, 1)))
        os.replace(partial, out)
        time.sleep(0.2)


if __name__ == "__main__":
    main()
