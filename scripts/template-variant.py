#!/usr/bin/env python3
"""template-variant.py NAME=VALUE... < template.yaml > variant.yaml

The template with some parameters' defaults changed, for checkers that read a template with
its defaults (checkov evaluates Conditions that way, so the resources behind
EnableCloudFront=false would go unchecked). Only the `Default:` line of each named parameter
changes; the run fails if a name is not a parameter with a default.
"""
import re
import sys

text = sys.stdin.read()
for arg in sys.argv[1:]:
    name, value = arg.split("=", 1)
    pattern = re.compile(
        r"(\n  " + re.escape(name) + r":\n(?:    .*\n)*?    Default: ).*\n")
    text, n = pattern.subn(lambda m: m.group(1) + '"' + value + '"\n', text, count=1)
    if n != 1:
        sys.exit(f"template-variant.py: no parameter {name} with a Default")
sys.stdout.write(text)
