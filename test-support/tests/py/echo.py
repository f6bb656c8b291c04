"""Test peer for PyScript: prints READY and its arguments, then echoes every stdin
line as `ECHO <line>`; `exit` ends it."""
import sys

print("READY", *sys.argv[1:], flush=True)
for line in sys.stdin:
    line = line.rstrip("\n")
    if line == "exit":
        break
    print("ECHO", line, flush=True)
