"""Test peer for PyScript: prints READY and its arguments, then echoes every stdin
line as `ECHO <line>`; `exit` ends it. With `--no-flush` first it never flushes, so
its lines reach the test only when Python runs unbuffered (-u)."""
import sys

flush = sys.argv[1:2] != ["--no-flush"]
print("READY", *sys.argv[1:], flush=flush)
for line in sys.stdin:
    line = line.rstrip("\n")
    if line == "exit":
        break
    print("ECHO", line, flush=flush)
