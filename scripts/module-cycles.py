#!/usr/bin/env python3
"""Fails when the modules of a crate's src/ import each other in a circle.

A module depends on another when it names `crate::<other>` (in a `use` or a path).
Prints every strongly connected group of two or more modules and exits 1 if any.
Usage: scripts/module-cycles.py crates/mandate-server/src
"""
import os
import re
import sys


def module_text(src, mod):
    """A file module's text, or a directory module's files together."""
    path = os.path.join(src, mod)
    if os.path.isdir(path):
        texts = []
        for name in sorted(os.listdir(path)):
            if name.endswith(".rs"):
                with open(os.path.join(path, name)) as handle:
                    texts.append(handle.read())
        return "\n".join(texts)
    with open(path + ".rs") as handle:
        return handle.read()


def graph(src):
    mods = [f[:-3] for f in os.listdir(src) if f.endswith(".rs") and f not in ("lib.rs", "main.rs")]
    mods += [d for d in os.listdir(src) if os.path.isfile(os.path.join(src, d, "mod.rs"))]
    edges = {}
    for mod in mods:
        text = module_text(src, mod)
        # Unit tests may reach anywhere; only the module's own code counts.
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
        edges[mod] = {
            other
            for other in mods
            if other != mod
            and (re.search(r"crate::" + other + r"\b", text) or re.search(r"use crate::\{[^}]*\b" + other + r"\b", text, re.S))
        }
    return edges


def cycles(edges):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


if __name__ == "__main__":
    src = sys.argv[1]
    found = cycles(graph(src))
    for group in found:
        print(f"FAIL: {src}: modules import each other in a circle: {' -> '.join(group)}")
    sys.exit(1 if found else 0)
