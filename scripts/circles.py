#!/usr/bin/env python3
"""Import circles between the files of each crate under crates/: a file points at another when
it names it through `crate::a::b` or `super::...`; a circle is a set of two or more files that
reach each other (a strongly connected component). Prints each crate's files and circles.

    python3 scripts/circles.py [--verbose] [--fail]

--verbose lists the files of each circle; --fail exits 1 when any circle is found.
"""

import pathlib
import re
import sys

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def module_files(src):
    """Module path (a tuple of names) -> file, for one crate's src/."""
    out = {}
    for f in src.rglob("*.rs"):
        parts = list(f.relative_to(src).with_suffix("").parts)
        if parts[-1] in ("mod", "lib", "main"):
            parts.pop()
        out[tuple(parts)] = f
    return out


def own_module(src, f):
    parts = list(f.relative_to(src).with_suffix("").parts)
    return tuple(parts[:-1]) if parts[-1] in ("mod", "lib", "main") else tuple(parts)


USE = re.compile(r"\buse\s+((?:crate|super)\s*::[^;]*);")


def expand(tree):
    """`a::{b, c::{d}}` -> ["a::b", "a::c::d"]."""
    tree = re.sub(r"\s+", "", tree)
    start = tree.find("{")
    if start < 0:
        return [tree]  # a trailing `X as Y` only lengthens the last name; modules match by prefix
    depth, parts, last = 0, [], start + 1
    for i in range(start, len(tree)):
        if tree[i] == "{":
            depth += 1
        elif tree[i] == "}":
            depth -= 1
            if depth == 0:
                parts.append(tree[last:i])
                break
        elif tree[i] == "," and depth == 1:
            parts.append(tree[last:i])
            last = i + 1
    head = tree[:start]
    return [path for part in parts if part for path in expand(head + part)]


def targets(src, mods, f):
    """The files `f` names."""
    here = own_module(src, f)
    text = re.sub(r"//[^\n]*", "", f.read_text(errors="replace"))
    paths = [p for tree in USE.findall(text) for p in expand(tree)]
    paths += ["".join(m) for m in PATH.findall(USE.sub("", text))]
    found = set()
    for path in paths:
        root, _, rest = path.partition("::")
        names = [n for n in rest.split("::") if n and n not in ("self", "*")]
        base = [] if root == "crate" else list(here[:-1])
        while names and names[0] == "super":
            names.pop(0)
            base = base[:-1]
        path = base + names
        for n in range(len(path), 0, -1):
            if tuple(path[:n]) in mods:
                found.add(mods[tuple(path[:n])])
                break
    found.discard(f)
    return found


def circles(graph):
    """Strongly connected components of two or more nodes (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif nxt not in index:
                index[nxt] = low[nxt] = counter[0]
                counter[0] += 1
                stack.append(nxt)
                on.add(nxt)
                work.append((nxt, iter(graph[nxt])))
            elif nxt in on:
                low[node] = min(low[node], index[nxt])
    return out


def main():
    verbose, fail = "--verbose" in sys.argv, "--fail" in sys.argv
    total = 0
    for crate in sorted(pathlib.Path("crates").iterdir()):
        src = crate / "src"
        if not src.is_dir():
            continue
        mods = module_files(src)
        graph = {f: targets(src, mods, f) for f in mods.values()}
        found = circles(graph)
        total += len(found)
        sizes = ", ".join(str(len(c)) for c in found) or "none"
        print(f"{crate.name}: {len(graph)} files, circles: {sizes}")
        if verbose:
            for c in found:
                print("   ", " ".join(str(p.relative_to(src)) for p in c))
    print(f"circles in all crates: {total}")
    sys.exit(1 if fail and total else 0)


if __name__ == "__main__":
    main()
