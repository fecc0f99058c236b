#!/usr/bin/env python3
"""Import graph of a crate's src/ at file-module granularity: prints the strongly connected groups
(import cycles). Usage: scripts/import-cycles.py [REPO_DIR] [-v]   (-v: the edges inside each group)"""
import os, re, sys
args = [a for a in sys.argv[1:] if a != "-v"]
root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
src = os.path.join(root, 'src')
mods = {}
for d, _, fs in os.walk(src):
    for f in fs:
        if not f.endswith('.rs') or f == 'main.rs': continue
        p = os.path.join(d, f)
        rel = os.path.relpath(p, src)[:-3].split(os.sep)
        if rel[-1] == 'mod': rel = rel[:-1]
        if rel == ['lib']: continue
        mods['::'.join(rel)] = p
def resolve(path):
    parts = path.split('::')
    for n in range(len(parts), 0, -1):
        k = '::'.join(parts[:n])
        if k in mods: return k
    return None
edges = {m: set() for m in mods}
for m, p in mods.items():
    text = open(p).read()
    text = re.split(r'#\[cfg\(test\)\]\s*mod tests', text)[0]
    for ref in re.findall(r'crate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)', text):
        t = resolve(ref)
        if t and t != m and not m.startswith(t + '::') : edges[m].add(t)
    parent = m.rsplit('::', 1)[0] if '::' in m else None
    for ref in re.findall(r'\bsuper::([a-z_][a-z0-9_]*)', text):
        base = (parent + '::' + ref) if parent else ref
        t = resolve(base)
        if t and t != m: edges[m].add(t)
# Tarjan
sys.setrecursionlimit(10000)
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in mods:
    if v not in idx: sc(v)
cyc = [sorted(s) for s in sccs if len(s) > 1]
print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} import edges, {len(cyc)} cycles (strongly connected groups)")
for s in cyc: print(f"  {len(s)} modules: {', '.join(s)}")
if '-v' in sys.argv:
    for s in cyc:
        ss = set(s)
        for m in s:
            print(f"    {m} -> {', '.join(sorted(edges[m] & ss))}")
