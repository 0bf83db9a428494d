"""Print uv's flags for what this machine's pip configuration says (indexes, find-links, constraints),
so `make setup` installs the same pinned set from the same places with uv as with pip."""

import shlex
import subprocess
import sys

FLAGS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}

out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
flags: list[str] = []
for line in out.splitlines():
    key, _, value = line.partition("=")
    name = key.rsplit(".", 1)[-1]
    if name in FLAGS and value:
        for item in shlex.split(value)[0].split():
            if [FLAGS[name], item] != flags[-2:] and item not in flags:
                flags += [FLAGS[name], item]
print(shlex.join(flags))
