"""A stand-in for the GitHub CLI, for the workflow step tests: the few `gh` calls the
workflows make, served from a local folder, every call recorded.

The folder (``$FAKE_GH_DIR``) holds:

- ``runs.json``: previous workflow runs, ``[{"databaseId", "workflow", "branch", "status"}]``;
- ``artifacts/<run id>/<artifact name>/``: each run's artifacts;
- ``comments.json``: the pull request's comments, ``[{"id", "body", "issue"}]``;
- ``calls.jsonl``: one line per call, ``{"argv", "method", "path"}`` (written here).

Anything else exits 2 with ``fake gh: unhandled``, so a workflow that starts calling `gh`
differently fails its test instead of passing by accident. ``--jq`` goes to the real jq.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

STATE = Path(os.environ.get("FAKE_GH_DIR", "."))


def main(argv: list[str]) -> int:
    record = {"argv": argv, "method": None, "path": None}
    try:
        if argv[:2] == ["run", "list"]:
            return run_list(options(argv[2:]))
        if argv[:2] == ["run", "download"]:
            return run_download(argv[2], options(argv[3:]))
        if argv[:1] == ["api"]:
            return api(argv[1:], record)
        return unhandled(argv)
    finally:
        with open(STATE / "calls.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def unhandled(argv: list[str]) -> int:
    print(f"fake gh: unhandled call: gh {' '.join(argv)}", file=sys.stderr)
    return 2


FLAGS = {"--paginate"}  # options without a value


def options(args: list[str]) -> dict[str, Any]:
    """``--name value`` and ``-X value`` pairs (repeatable ``-f``/``-F`` as lists); the
    positional arguments under ``""``."""
    found: dict[str, Any] = {"": []}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in FLAGS:
            found[arg] = True
        elif arg.startswith("-"):
            if arg in ("-f", "-F", "--field", "--raw-field"):
                found.setdefault("fields", []).append(args[i + 1])
            else:
                found[arg] = args[i + 1]
            i += 1
        else:
            found[""].append(arg)
        i += 1
    return found


def emit(data: Any, opts: dict[str, Any]) -> int:
    text = json.dumps(data)
    if "--jq" in opts:
        jq = shutil.which("jq")
        if jq is None:
            print("fake gh: --jq needs jq on PATH", file=sys.stderr)
            return 2
        done = subprocess.run([jq, "-r", opts["--jq"]], input=text, text=True, check=False)
        return done.returncode
    print(text)
    return 0


def load(name: str) -> list[dict[str, Any]]:
    path = STATE / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def run_list(opts: dict[str, Any]) -> int:
    runs = [
        run
        for run in load("runs.json")
        if run["workflow"] == opts.get("--workflow")
        and run["branch"] == opts.get("--branch", run["branch"])
        and run["status"] == opts.get("--status", run["status"])
    ]
    runs = runs[: int(opts.get("--limit", 20))]
    fields = opts.get("--json", "databaseId").split(",")
    return emit([{f: run.get(f) for f in fields} for run in runs], opts)


def run_download(run_id: str, opts: dict[str, Any]) -> int:
    source = STATE / "artifacts" / run_id / opts["--name"]
    if not source.is_dir():
        print(f"no artifact matches {opts['--name']!r} in run {run_id}", file=sys.stderr)
        return 1
    shutil.copytree(source, opts.get("--dir", "."), dirs_exist_ok=True)
    return 0


ISSUE_COMMENTS = re.compile(r"repos/[^/]+/[^/]+/issues/(\d+)/comments")
ONE_COMMENT = re.compile(r"repos/[^/]+/[^/]+/issues/comments/(\d+)")


def api(args: list[str], record: dict[str, Any]) -> int:
    opts = options(args)
    (path,) = opts[""]
    method = opts.get("--method", opts.get("-X", "GET")).upper()
    record.update(method=method, path=path)
    comments = load("comments.json")
    if method == "GET" and (match := ISSUE_COMMENTS.fullmatch(path)):
        return emit([c for c in comments if c["issue"] == int(match.group(1))], opts)
    if method == "POST" and (match := ISSUE_COMMENTS.fullmatch(path)):
        comment = {"id": 1000 + len(comments), "issue": int(match.group(1)), "body": body(opts)}
        comments.append(comment)
    elif method == "PATCH" and (match := ONE_COMMENT.fullmatch(path)):
        (comment,) = [c for c in comments if c["id"] == int(match.group(1))]
        comment["body"] = body(opts)
    else:
        return unhandled(["api", *args])
    (STATE / "comments.json").write_text(json.dumps(comments), encoding="utf-8")
    return emit(comment, opts)


def body(opts: dict[str, Any]) -> str:
    """The comment's body: ``-F body=@FILE`` (gh reads the file) or ``-f body=TEXT``."""
    (field,) = opts.get("fields", [])
    name, _, value = field.partition("=")
    if name != "body":
        raise SystemExit(f"fake gh: unhandled field {field!r}")
    return Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
