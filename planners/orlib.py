"""Readers for Beasley's OR-Library uncapacitated p-median instances (pmed1-pmed40).

Source: J.E. Beasley, "A note on solving large p-median problems", European Journal of Operational
Research 21 (1985) 270-273; files from http://people.brunel.ac.uk/~mastjjb/jeb/orlib/pmedinfo.html.

File format (``pmedN.txt``): the first line is ``n_vertices n_edges p``; then one line per edge
``i j cost`` with 1-based vertex numbers. Edges are undirected. The cost between two vertices is the
shortest-path length over the edges. Where an edge appears more than once, the LAST occurrence holds:
that is the convention under which the published optima are reached (on pmed1 keeping the minimum of the
duplicates gives an optimum of 5718 instead of the published 5819).

``pmedopt.txt`` lists the known optimal objective values, one ``pmedN value`` per line after a header.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

from planners.placement import PlacementProblem, PlacementResult, solve_pmedian
from twin.errors import TwinInputError

__all__ = [
    "OrlibInstance",
    "OrlibRun",
    "generate_orlib_like",
    "read_orlib_optima",
    "read_orlib_pmedian",
    "solve_orlib_file",
]


@dataclass(frozen=True)
class OrlibInstance:
    """One OR-Library p-median instance, ready to solve.

    Attributes:
        n_vertices: number of vertices n; every vertex is both a demand point (weight 1) and a candidate.
        p: number of medians to open.
        distances: (n, n) float array, all-pairs shortest-path lengths over the instance's edges
            (0-based: row/column ``k`` is the file's vertex ``k + 1``); ``inf`` where disconnected.
        name: instance name, the file stem (``"pmed1"``).
    """

    n_vertices: int
    p: int
    distances: np.ndarray
    name: str


def _read_lines(path: str | os.PathLike[str]) -> list[str]:
    try:
        return Path(path).read_text(encoding="ascii").splitlines()
    except FileNotFoundError:
        raise TwinInputError("file not found (expected an OR-Library pmed*.txt file)", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TwinInputError(f"cannot read file: {exc}", path=str(path)) from None


def _ints(line: str, lineno: int, count: int, what: str, path: str) -> list[int]:
    fields = line.split()
    if len(fields) != count:
        raise TwinInputError(
            f"line {lineno}: expected {count} integers ({what}), got {line.strip()!r}", path=path
        )
    try:
        return [int(f) for f in fields]
    except ValueError:
        raise TwinInputError(
            f"line {lineno}: expected {count} integers ({what}), got {line.strip()!r}", path=path
        ) from None


#: Largest instance read: the all-pairs distance matrix is dense (n x n x 8 bytes; 20,000 -> 3 GiB).
MAX_VERTICES = 20_000


def read_orlib_pmedian(path: str | os.PathLike[str]) -> OrlibInstance:
    """Read an OR-Library ``pmedN.txt`` file and compute its all-pairs shortest-path distances.

    Duplicated edges: the last occurrence in the file wins (see the module docstring). Self-loops are
    ignored (the distance from a vertex to itself is 0). Blank lines are skipped.

    Args:
        path: the instance file.

    Returns:
        :class:`OrlibInstance` with an (n, n) float distance matrix (Dijkstra, scipy.sparse.csgraph).

    Raises:
        TwinInputError: missing/unreadable file, malformed header or edge line, a vertex outside
            1..n, a negative cost, p outside 1..n, or fewer edge lines than the header announces. The
            message names the file, the line number and the offending value.
    """
    spath = str(path)
    lines = [(k + 1, s) for k, s in enumerate(_read_lines(path)) if s.strip()]
    if not lines:
        raise TwinInputError("empty file (expected header 'n_vertices n_edges p')", path=spath)
    head_no, head = lines[0]
    n, n_edges, p = _ints(head, head_no, 3, "n_vertices n_edges p", spath)
    if n < 1:
        raise TwinInputError(f"line {head_no}: n_vertices must be >= 1, got {n}", path=spath)
    if n > MAX_VERTICES:
        raise TwinInputError(f"line {head_no}: n_vertices {n:,} is beyond {MAX_VERTICES:,} (the distance matrix "
                             f"would need {n * n * 8 / 2**30:,.0f} GiB)", path=spath)
    if not 1 <= p <= n:
        raise TwinInputError(f"line {head_no}: p must be in 1..{n}, got {p}", path=spath)
    body = lines[1:]
    if len(body) < n_edges:
        raise TwinInputError(
            f"header (line {head_no}) announces {n_edges} edges but the file holds {len(body)} edge lines",
            path=spath,
        )
    if len(body) > n_edges:
        extra_no, extra = body[n_edges]
        raise TwinInputError(
            f"line {extra_no}: unexpected line {extra.strip()!r} after the {n_edges} edges announced "
            f"in the header",
            path=spath,
        )
    edges: dict[tuple[int, int], int] = {}
    for lineno, line in body:
        i, j, cost = _ints(line, lineno, 3, "i j cost", spath)
        for v in (i, j):
            if not 1 <= v <= n:
                raise TwinInputError(f"line {lineno}: vertex {v} out of range 1..{n}", path=spath)
        if cost < 0:
            raise TwinInputError(f"line {lineno}: negative edge cost {cost}", path=spath)
        if i == j:
            continue
        key = (i, j) if i < j else (j, i)
        edges.pop(key, None)  # last occurrence wins (and keeps file order for readability)
        edges[key] = cost
    if edges:
        ij = np.array(list(edges.keys()), dtype=np.int64) - 1
        w = np.array(list(edges.values()), dtype=float)
    else:
        ij = np.zeros((0, 2), dtype=np.int64)
        w = np.zeros(0, dtype=float)
    # A zero-cost edge would vanish from a sparse matrix; store it as a tiny positive and round back.
    tiny = 1e-300
    graph = coo_matrix((np.where(w == 0, tiny, w), (ij[:, 0], ij[:, 1])), shape=(n, n)).tocsr()
    dist = shortest_path(graph, method="D", directed=False)
    unreachable = np.argwhere(~np.isfinite(dist))
    if unreachable.size:
        a, b = (int(x) + 1 for x in unreachable[0])
        raise TwinInputError(f"the graph is not connected: vertex {b} cannot be reached from vertex {a} "
                             f"({len(unreachable) // 2:,} pairs unreachable)", path=spath)
    dist[dist < 1e-200] = 0.0
    return OrlibInstance(n_vertices=n, p=p, distances=dist, name=Path(path).stem)


def generate_orlib_like(n_vertices: int, p: int, seed: int = 0, edges_per_vertex: float | None = None) -> OrlibInstance:
    """A random p-median instance in the manner of Beasley's (1985) pmed1-40: a connected undirected
    graph of ``n_vertices`` vertices whose edge costs are integers drawn uniformly from 1..100; distances
    are shortest paths, every vertex is a demand point of weight 1 and a candidate.

    The graph is a random spanning tree (each vertex, in a random order, joined to an earlier one) plus
    random edges up to n^2 / 50 edges in all, the density of pmed1-40 (pmed36: 900 vertices, 16,200
    edges), or ``edges_per_vertex * n`` when given. A repeated pair keeps its last draw. Deterministic
    for a given ``seed`` (numpy ``default_rng``).

    Args:
        n_vertices: n >= 2.
        p: medians to open, 1..n.
        seed: seed of the generator.
        edges_per_vertex: edges / vertices (default n / 50, at least 1.5).

    Raises:
        TwinInputError: n < 2 or p outside 1..n.
    """
    n = int(n_vertices)
    if n < 2:
        raise TwinInputError(f"n_vertices must be >= 2, got {n_vertices}")
    if not 1 <= p <= n:
        raise TwinInputError(f"p must be in 1..{n}, got {p}")
    rng = np.random.default_rng(seed)
    n_edges = round(n * (edges_per_vertex if edges_per_vertex is not None else max(1.5, n / 50)))
    n_edges = min(max(n_edges, n - 1), n * (n - 1) // 2)
    perm = rng.permutation(n)
    edges: dict[tuple[int, int], int] = {}
    for a in range(1, n):
        b = int(perm[rng.integers(0, a)])
        i, j = sorted((int(perm[a]), b))
        edges[(i, j)] = int(rng.integers(1, 101))
    while len(edges) < n_edges:
        i, j = sorted(int(v) for v in rng.choice(n, 2, replace=False))
        edges[(i, j)] = int(rng.integers(1, 101))
    ij = np.array(list(edges.keys()), dtype=np.int64)
    graph = coo_matrix((np.array(list(edges.values()), dtype=float), (ij[:, 0], ij[:, 1])), shape=(n, n)).tocsr()
    dist = shortest_path(graph, method="D", directed=False)
    return OrlibInstance(n_vertices=n, p=int(p), distances=dist, name=f"gen{n}-p{p}-s{seed}")


def read_orlib_optima(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read OR-Library ``pmedopt.txt``: the known optimal objective value of each instance.

    The first non-blank line is a header (``Data file   Optimal solution value``) and is skipped when its
    second field is not an integer.

    Returns:
        ``{"pmed1": 5819, ...}``.

    Raises:
        TwinInputError: missing file, or a line that is not ``name integer`` (names file, line, value).
    """
    spath = str(path)
    optima: dict[str, int] = {}
    first = True
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if first:
            first = False
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                continue  # header line
        if len(fields) != 2:
            raise TwinInputError(f"line {lineno}: expected 'name value', got {line.strip()!r}", path=spath)
        try:
            value = int(fields[1])
        except ValueError:
            raise TwinInputError(
                f"line {lineno}: optimal value {fields[1]!r} is not an integer", path=spath
            ) from None
        optima[fields[0]] = value
    return optima


@dataclass(frozen=True)
class OrlibRun:
    """An OR-Library instance solved by :func:`planners.placement.solve_pmedian`.

    Attributes:
        name: instance name (file stem).
        n_vertices: n.
        p: medians opened (the file's p unless overridden).
        result: the :class:`planners.placement.PlacementResult` (objective, lower bound, gap, time).
        known_optimum: the published optimum from a ``pmedopt.txt`` beside the file, when it lists the
            instance and ``p`` is the file's own; else None.
    """

    name: str
    n_vertices: int
    p: int
    result: PlacementResult
    known_optimum: int | None


def solve_orlib_file(path: str | os.PathLike[str], p: int | None = None, time_limit_s: float = 60.0,
                     seed: int = 0) -> OrlibRun:
    """Read and solve an OR-Library p-median file (every vertex a demand point of weight 1 and a
    candidate), and look up its published optimum in ``pmedopt.txt`` beside it.

    Args:
        path: the ``pmedN.txt`` file (:func:`read_orlib_pmedian`).
        p: medians to open (default: the file's p; the published optimum is looked up only for it).
        time_limit_s: solver budget, s (:func:`planners.placement.solve_pmedian`, method ``"auto"``).
        seed: seed of the local search restarts.

    Returns:
        :class:`OrlibRun` with the :class:`planners.placement.PlacementResult`.

    Raises:
        TwinInputError: bad file (see :func:`read_orlib_pmedian`), bad p, a disconnected instance
            (infinite distances), a malformed ``pmedopt.txt``.
    """
    inst = read_orlib_pmedian(path)
    p_used = inst.p if p is None else p
    problem = PlacementProblem.from_cost_matrix(inst.distances)
    result = solve_pmedian(problem, p_used, time_limit_s=time_limit_s, seed=seed)
    known = None
    opt_file = Path(path).with_name("pmedopt.txt")
    if opt_file.is_file() and p_used == inst.p:
        known = read_orlib_optima(opt_file).get(inst.name)
    return OrlibRun(inst.name, inst.n_vertices, p_used, result, known)
