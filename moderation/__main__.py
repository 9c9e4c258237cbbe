"""``python -m moderation check [--nsfw-channel] [--jsonl] [--no-semantic]``: one prompt per stdin line.

Writes one JSON object per line: {"prompt", "action", "categories", "reason", "layer"}. ``--jsonl``
reads JSON lines instead ({"prompt": ..., "negative": ...}), for prompts that span lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from moderation.moderator import Moderator
from moderation.policy import Policy

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m moderation")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="moderate prompts read one per line from stdin")
    check.add_argument("--nsfw-channel", action="store_true", help="as if posted in an age-restricted channel")
    check.add_argument("--nsfw-opt-in", action="store_true", help="the guild opted in to NSFW channels")
    check.add_argument("--jsonl", action="store_true", help='stdin lines are JSON: {"prompt", "negative"}')
    check.add_argument("--no-semantic", action="store_true", help="rules only (no model)")
    args = parser.parse_args(argv)

    moderator = Moderator(semantic=not args.no_semantic)
    policy = Policy(nsfw_opt_in=args.nsfw_opt_in)
    out = sys.stdout
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        negative = ""
        prompt = line
        if args.jsonl:
            record = json.loads(line)
            prompt, negative = str(record.get("prompt", "")), str(record.get("negative", ""))
        v = moderator.check(prompt, negative, nsfw_channel=args.nsfw_channel, policy=policy)
        out.write(json.dumps({"prompt": prompt, "action": v.action.value, "categories": v.categories,
                              "reason": v.reason, "layer": v.layer}, ensure_ascii=False) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
