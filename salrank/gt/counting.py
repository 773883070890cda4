"""Counting fixation points inside boxes with the half-open rule ``x1 <= x < x2, y1 <= y < y2``.

The fast path compresses the coordinates on the boxes' own edges: with the sorted distinct
x-edges ``e_0 < e_1 < ...`` of the boxes, a point's column index ``ix`` = number of edges
``<= x`` (:func:`numpy.searchsorted`, exact on floats), and ``x1 <= x < x2`` holds exactly when
``p < ix <= q`` for ``e_p = x1`` and ``e_q = x2``. Binning the points on the compressed
``(ix, iy)`` grid (one :func:`numpy.bincount`) and taking a 2-D prefix sum (summed-area table)
gives every box's count in O(1): O(N log K + K^2) per image instead of O(N K), and exactly the
same counts as a point-by-point loop, for any float coordinates.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from salrank.gt.inputs import as_boxes, as_points

__all__ = ["count_points_in_boxes", "count_points_in_boxes_loop", "points_inside_image"]


def count_points_in_boxes(points, boxes) -> np.ndarray:
    """Number of points inside each box (half-open ``x1 <= x < x2``, ``y1 <= y < y2``).

    ``points``: ``(N, 2)`` ``(x, y)`` pixels; ``boxes``: ``(K, 4)`` ``[x1, y1, x2, y2]`` pixels.
    Returns an int64 array of shape ``(K,)``. Exact for float coordinates (same result as
    :func:`count_points_in_boxes_loop`).
    """
    return _count(as_points(points), as_boxes(boxes))


_MAX_GRID_BOXES = 256  # above this, a (2K+1)^2 grid costs more than comparing every point


def _count(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """:func:`count_points_in_boxes` on validated float64 arrays."""
    n_boxes = len(boxes)
    if n_boxes == 0 or len(points) == 0:
        return np.zeros(n_boxes, dtype=np.int64)
    if n_boxes > _MAX_GRID_BOXES:
        x, y = points[:, 0], points[:, 1]
        return np.array([np.count_nonzero((x >= x1) & (x < x2) & (y >= y1) & (y < y2)) for x1, y1, x2, y2 in boxes],
                        dtype=np.int64)
    x_edges = np.unique(boxes[:, 0::2])
    y_edges = np.unique(boxes[:, 1::2])
    ny = len(y_edges) + 1
    ix = np.searchsorted(x_edges, points[:, 0], side="right")
    iy = np.searchsorted(y_edges, points[:, 1], side="right")
    cells = np.bincount(ix * ny + iy, minlength=(len(x_edges) + 1) * ny).reshape(-1, ny)
    table = cells.cumsum(axis=0).cumsum(axis=1)  # table[i, j] = #points with ix <= i and iy <= j
    p = np.searchsorted(x_edges, boxes[:, 0])
    q = np.searchsorted(x_edges, boxes[:, 2])
    r = np.searchsorted(y_edges, boxes[:, 1])
    s = np.searchsorted(y_edges, boxes[:, 3])
    return (table[q, s] - table[p, s] - table[q, r] + table[p, r]).astype(np.int64, copy=False)


def count_points_in_boxes_loop(points, boxes) -> np.ndarray:
    """Reference implementation of :func:`count_points_in_boxes`: a plain loop over the points
    (and, for each point, over the boxes). Slow; used by tests and :mod:`salrank.bench.gt`."""
    pts = as_points(points).tolist()
    bxs = as_boxes(boxes).tolist()
    counts = [0] * len(bxs)
    for x, y in pts:
        for k, (x1, y1, x2, y2) in enumerate(bxs):
            if x1 <= x < x2 and y1 <= y < y2:
                counts[k] += 1
    return np.asarray(counts, dtype=np.int64)


def points_inside_image(points: np.ndarray, image_size: tuple[int, int]) -> int:
    """Number of points inside the image ``0 <= x < width``, ``0 <= y < height``."""
    height, width = image_size
    x, y = points[:, 0], points[:, 1]
    return int(np.count_nonzero((x >= 0) & (x < width) & (y >= 0) & (y < height)))


# --------------------------------------------------------------------------- many images at once

_FLAG = np.int64(1) << np.int64(40)  # marks cells whose points need an exact comparison
_CHUNK_POINTS = 1 << 17
_SUBPIXEL = 2
_CHUNK_IMAGES = 2048
_CHUNK_LUT = 1 << 23
_CHUNK_CELLS = 1 << 23
_MAX_BATCH_BOXES = 128


def _unique_edges(values: np.ndarray, image: np.ndarray, n_images: int):
    """Sorted distinct edge values per image: returns (index of each input value in its image's
    distinct list, distinct values, their image, number of distinct values per image)."""
    order = np.lexsort((values, image))
    v, g = values[order], image[order]
    new = np.ones(len(v), dtype=bool)
    new[1:] = (v[1:] != v[:-1]) | (g[1:] != g[:-1])
    unique_id = np.cumsum(new) - 1  # global index among distinct (image, value) pairs
    per_image = np.bincount(g[new], minlength=n_images)
    first = np.cumsum(per_image) - per_image  # global index of each image's first distinct value
    position = np.empty(len(values), dtype=np.int64)
    position[order] = unique_id - first[g]
    return position, v[new], g[new], per_image


def _axis_tables(edges: np.ndarray, edge_image: np.ndarray, n_images: int, stride: int, scale: int):
    """Lookup tables of one axis over integer cells ``c = floor(clip(coord, -1, stride - 2))``
    (cell ``c`` holds ``c <= coord < c + 1``), stored at ``image * stride + c + 1``.

    Returns ``(table, slots)``: ``table`` = ``scale *`` (number of distinct edges ``<= c``,
    i.e. below every coordinate of the cell), plus :data:`_FLAG` where a non-integer edge lies
    inside the cell; ``slots`` = list of float tables holding those inner edges (``+inf``
    elsewhere) for the exact comparison of the points in flagged cells.
    """
    inner = edges != np.floor(edges)
    cell = np.floor(edges).astype(np.int64) + 1 + edge_image * stride
    first_full = np.ceil(edges).astype(np.int64) + 1  # first cell entirely >= the edge
    steps = np.bincount(edge_image * stride + first_full, minlength=n_images * stride)
    table = steps.reshape(n_images, stride).cumsum(axis=1).reshape(-1) * scale
    inner_cell, inner_edge = cell[inner], edges[inner]
    table[inner_cell] += _FLAG  # np.add.at is not needed: the flag is set once per cell
    order = np.argsort(inner_cell, kind="stable")
    inner_cell, inner_edge = inner_cell[order], inner_edge[order]
    new_cell = np.r_[True, inner_cell[1:] != inner_cell[:-1]] if len(inner_cell) else np.zeros(0, bool)
    slot = np.arange(len(inner_cell)) - np.maximum.accumulate(np.where(new_cell, np.arange(len(inner_cell)), 0))
    slots = []
    for j in range(int(slot.max()) + 1 if len(slot) else 0):
        values = np.full(n_images * stride, np.inf)
        values[inner_cell[slot == j]] = inner_edge[slot == j]
        slots.append(values)
    return table, slots


class _NonFinite(ValueError):
    def __init__(self, block: int) -> None:
        super().__init__(f"block {block} contains a NaN or infinite value")
        self.block = block


def _check_finite_blocks(blocks: list[np.ndarray]) -> None:
    for i, block in enumerate(blocks):
        if not np.isfinite(block).all():
            raise _NonFinite(i)


class Workspace:
    """Reusable scratch buffers: fresh multi-megabyte arrays cost page faults on every chunk,
    so the per-point arrays of :func:`count_points_in_boxes_batch` live here between chunks."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised array of ``shape`` backed by the buffer ``name`` (grown if needed)."""
        size = int(np.prod(shape))
        buf = self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = np.empty(max(size, 1), dtype=dtype)
            self._buffers[name] = buf
        return buf[:size].reshape(shape)


def _count_chunk(point_blocks: list[np.ndarray], boxes, box_counts, sizes, ws: Workspace):
    """Counts of one chunk of images: ``point_blocks`` = finite ``(N_i, 2)`` points per image;
    boxes clipped to their images. Returns ``(counts (B,), inside (n,))``."""
    n = len(sizes)
    heights, widths = sizes[:, 0], sizes[:, 1]
    image_of_box = np.repeat(np.arange(n), box_counts)
    # Every image gets one extra box, the image itself, whose count is N (points inside).
    zeros = np.zeros(n)
    # Coordinates are scaled by _SUBPIXEL (a power of two: exact) so that cells are finer and
    # fewer points fall in a cell that needs an exact comparison.
    all_x = np.concatenate([boxes[:, 0], boxes[:, 2], zeros, widths.astype(np.float64)]) * _SUBPIXEL
    all_y = np.concatenate([boxes[:, 1], boxes[:, 3], zeros, heights.astype(np.float64)]) * _SUBPIXEL
    owner = np.concatenate([image_of_box, image_of_box, np.arange(n), np.arange(n)])
    px, ux, gx, nux = _unique_edges(all_x, owner, n)
    py, uy, gy, nuy = _unique_edges(all_y, owner, n)
    grid = int(max(nux.max(), nuy.max())) + 1  # compressed cells per axis (padded to a square)
    stride = int(max(widths.max(), heights.max())) * _SUBPIXEL + 3
    lut_x, slots_x = _axis_tables(ux, gx, n, stride, grid)
    lut_x += np.repeat(np.arange(n, dtype=np.int64) * grid * grid, stride)
    lut_y, slots_y = _axis_tables(uy, gy, n, stride, 1)

    # Per point: the cell of each axis (clipping only moves coordinates outside every box, and
    # never into a cell needing an exact comparison), then the two table entries.
    m = sum(len(block) for block in point_blocks)
    xy = ws.array("xy", (2, m), np.float64)
    cell = ws.array("cell", (2, m), np.intp)
    start = 0
    for i, block in enumerate(point_blocks):
        stop = start + len(block)
        xy[:, start:stop] = block.T
        cell[:, start:stop] = i * stride + 1  # the image's segment of the tables
        start = stop
    if not np.isfinite(xy.sum()):  # one cheap pass; a huge finite sum may overflow: recheck
        _check_finite_blocks(point_blocks)
    xy *= _SUBPIXEL  # an overflow gives +-inf, which the clip handles
    np.clip(xy, -1, stride - 2, out=xy)
    offset = ws.array("offset", (2, m), np.intp)
    np.floor(xy, out=offset, casting="unsafe")
    cell += offset
    flat = ws.array("flat", (m,), np.int64)
    other = ws.array("other", (m,), np.int64)
    np.take(lut_x, cell[0], out=flat, mode="clip")  # indices are in range; "clip" is unbuffered
    np.take(lut_y, cell[1], out=other, mode="clip")
    flat += other
    flagged = ws.array("flagged", (m,), bool)
    np.greater_equal(flat, _FLAG, out=flagged)
    exact = np.flatnonzero(flagged)
    if len(exact):
        fixed = flat[exact] & (_FLAG - 1)
        x, y, cx, cy = xy[0, exact], xy[1, exact], cell[0, exact], cell[1, exact]
        for values in slots_x:
            fixed += (x >= np.take(values, cx)) * grid
        for values in slots_y:
            fixed += y >= np.take(values, cy)
        flat[exact] = fixed
    cells = np.bincount(flat, minlength=n * grid * grid).reshape(n, grid, grid)
    table = cells.cumsum(axis=1).cumsum(axis=2)  # table[i, a, b] = #points of i with ix <= a, iy <= b

    n_boxes = len(boxes)
    p, q = px[:n_boxes], px[n_boxes:2 * n_boxes]
    r, s = py[:n_boxes], py[n_boxes:2 * n_boxes]
    g = image_of_box
    counts = table[g, q, s] - table[g, p, s] - table[g, q, r] + table[g, p, r]
    i = np.arange(n)
    p0, q0 = px[2 * n_boxes:2 * n_boxes + n], px[2 * n_boxes + n:]
    r0, s0 = py[2 * n_boxes:2 * n_boxes + n], py[2 * n_boxes + n:]
    inside = table[i, q0, s0] - table[i, p0, s0] - table[i, q0, r0] + table[i, p0, r0]
    return counts.astype(np.int64), inside.astype(np.int64)


def count_points_in_boxes_batch(point_blocks, boxes: np.ndarray, box_counts, image_sizes, *,
                                names=None, progress: bool = False,
                                workspace: Workspace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Half-open counts for many images at once, exactly as :func:`count_points_in_boxes`.

    ``point_blocks``: one float64 ``(N_i, 2)`` array of finite ``(x, y)`` per image;
    ``boxes``: ``(B, 4)`` float64 ``[x1, y1, x2, y2]`` of all images concatenated, already
    clipped to their image, ``box_counts`` ``(n,)`` boxes per image; ``image_sizes``: ``(n, 2)``
    ``(height, width)``. Returns ``(counts (B,), inside (n,))``: int64 points per box and points
    inside each image.

    Algorithm: per axis, a lookup table over integer pixel cells gives each point's compressed
    edge index (number of distinct box edges ``<= coordinate``) in O(1); points in the few cells
    that hold a non-integer edge (or the cell of 0) are compared exactly. One
    :func:`numpy.bincount` over the images of a chunk (image offsets in the bin index) and a
    batched 2-D prefix sum give every count. Work is split into chunks of bounded memory; an
    image with more than 128 boxes is counted on its own.

    A NaN or infinite point raises :class:`ValueError` naming the image (``names[i]``, default
    its index). ``progress`` shows a tqdm bar over the images.
    """
    box_counts = np.asarray(box_counts, dtype=np.int64)
    sizes = np.asarray(image_sizes, dtype=np.int64).reshape(-1, 2)
    point_blocks = list(point_blocks)
    n = len(sizes)
    if len(point_blocks) != n or len(box_counts) != n:
        raise ValueError("point_blocks, box_counts and image_sizes must have one entry per image")
    if box_counts.sum() != len(boxes):
        raise ValueError("box_counts does not add up to the number of boxes")
    ws = workspace or Workspace()
    point_counts = np.fromiter((len(b) for b in point_blocks), dtype=np.int64, count=n)
    box_start = np.r_[0, np.cumsum(box_counts)]
    counts = np.zeros(len(boxes), dtype=np.int64)
    inside = np.zeros(n, dtype=np.int64)
    with tqdm(total=n, desc="counting fixations", unit="image", disable=not progress) as bar:
        for lo, hi in _chunks(point_counts, box_counts, sizes):
            blocks = point_blocks[lo:hi]
            bxs = boxes[box_start[lo]:box_start[hi]]
            try:
                if hi - lo == 1 and box_counts[lo] > _MAX_BATCH_BOXES:  # too many boxes for a grid
                    _check_finite_blocks(blocks)
                    counts[box_start[lo]:box_start[hi]] = _count(blocks[0], bxs)
                    inside[lo] = _count(blocks[0], np.array([[0.0, 0.0, sizes[lo, 1], sizes[lo, 0]]]))[0]
                else:
                    counts[box_start[lo]:box_start[hi]], inside[lo:hi] = _count_chunk(
                        blocks, bxs, box_counts[lo:hi], sizes[lo:hi], ws)
            except _NonFinite as exc:
                i = lo + exc.block
                name = names[i] if names is not None else i
                raise ValueError(f"fixation points of image {name!r} contain a NaN or infinite coordinate") from None
            bar.update(hi - lo)
    return counts, inside


def _chunks(point_counts: np.ndarray, box_counts: np.ndarray, sizes: np.ndarray):
    """``(lo, hi)`` image ranges of bounded memory; an image with more than
    :data:`_MAX_BATCH_BOXES` boxes is a range of its own."""
    n = len(sizes)
    lo = 0
    while lo < n:
        if box_counts[lo] > _MAX_BATCH_BOXES:
            yield lo, lo + 1
            lo += 1
            continue
        hi, n_points, side, grid = lo, 0, 0, 0
        while hi < n and box_counts[hi] <= _MAX_BATCH_BOXES:
            new_side = max(side, int(sizes[hi].max()) * _SUBPIXEL + 3)
            new_grid = max(grid, 2 * int(box_counts[hi]) + 3)
            k = hi - lo + 1
            if hi > lo and (n_points + point_counts[hi] > _CHUNK_POINTS or k > _CHUNK_IMAGES
                            or k * new_side > _CHUNK_LUT or k * new_grid * new_grid > _CHUNK_CELLS):
                break
            n_points += int(point_counts[hi])
            side, grid = new_side, new_grid
            hi += 1
        yield lo, hi
        lo = hi
