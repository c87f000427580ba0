"""Online change detectors for a stream of prediction errors (concept drift).

Small stateful objects in the style of river: :meth:`update` takes one value and returns the
detector, :attr:`drift_detected` is ``True`` on the update where a change is found, and the
detector starts afresh on the next update. Parameters are plain attributes.

Feed them the per-prediction error once labels arrive: ``0``/``1`` (wrong or right) for a
classifier, the absolute error (ideally scaled to about 1) for a regressor.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ADWIN", "DDM", "PageHinkley"]


class PageHinkley:
    """Page-Hinkley test: a cumulative sum of deviations from the running mean.

    Args:
        min_instances: Values seen before a change can be signalled.
        delta: Tolerated deviation (the magnitude of changes that are ignored).
        threshold: Cumulative deviation that signals a change (lambda).
        alpha: Forgetting factor of the cumulative sums (1 keeps everything).
        mode: ``"up"`` (increases only, e.g. error rates), ``"down"`` or ``"both"``.

    Raises:
        ValueError: A parameter is out of range.

    Example:
        >>> rng = np.random.default_rng(7)
        >>> stream = np.concatenate([rng.binomial(1, 0.1, 1000), rng.binomial(1, 0.5, 1000)])
        >>> ph = PageHinkley(mode="up")
        >>> for i, error in enumerate(stream):
        ...     if ph.update(error).drift_detected:
        ...         print(f"change detected at index {i}")
        change detected at index 1114
    """

    def __init__(self, min_instances: int = 30, delta: float = 0.005, threshold: float = 50.0,
                 alpha: float = 1 - 0.0001, mode: str = "both") -> None:
        if mode not in ("up", "down", "both"):
            raise ValueError(f"mode must be 'up', 'down' or 'both', got {mode!r}")
        if min_instances < 1 or delta < 0 or threshold <= 0 or not 0 < alpha <= 1:
            raise ValueError("PageHinkley needs min_instances >= 1, delta >= 0, threshold > 0 "
                             "and 0 < alpha <= 1")
        self.min_instances = int(min_instances)
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.mode = mode
        self._drift = False
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._sum_up = 0.0
        self._sum_down = 0.0
        self._min_up = math.inf
        self._max_down = -math.inf

    @property
    def drift_detected(self) -> bool:
        """``True`` if the last :meth:`update` found a change."""
        return self._drift

    @property
    def n(self) -> int:
        """Values seen since the last change (or the start)."""
        return self._n

    def update(self, x: float) -> PageHinkley:
        """Add one value; returns ``self``."""
        if self._drift:
            self._reset()
            self._drift = False
        x = float(x)
        self._n += 1
        self._mean += (x - self._mean) / self._n
        dev = x - self._mean
        self._sum_up = self.alpha * self._sum_up + dev - self.delta
        self._sum_down = self.alpha * self._sum_down + dev + self.delta
        self._min_up = min(self._min_up, self._sum_up)
        self._max_down = max(self._max_down, self._sum_down)
        if self._n >= self.min_instances:
            up = self._sum_up - self._min_up > self.threshold
            down = self._max_down - self._sum_down > self.threshold
            self._drift = (up and self.mode != "down") or (down and self.mode != "up")
        return self


class ADWIN:
    """ADaptive WINdowing (Bifet and Gavaldà, 2007) over a bounded window held in numpy.

    The window grows while the stream is stationary; every ``clock`` values, splits of the
    window into an older and a newer part (both at least ``min_window_length`` long, the newer
    part's length on a geometric grid, as ADWIN2's exponential buckets give) are tested, and
    when the two means differ by more than the variance-based bound of the paper at
    confidence ``delta``, the older part is dropped and a change is signalled. Prefix sums
    make each test O(number of splits); the window is capped at ``max_window`` values, so
    memory is fixed.

    Args:
        delta: Confidence of the cut test (smaller: fewer false alarms, later detection).
        clock: Values between two tests.
        max_window: Most values kept (the oldest are forgotten beyond it).
        min_window_length: Shortest older or newer part a cut may leave.

    Raises:
        ValueError: A parameter is out of range.

    Example:
        >>> rng = np.random.default_rng(7)
        >>> stream = np.concatenate([rng.binomial(1, 0.1, 1000), rng.binomial(1, 0.5, 1000)])
        >>> adwin = ADWIN()
        >>> for i, error in enumerate(stream):
        ...     if adwin.update(error).drift_detected:
        ...         print(f"change detected at index {i}, window now {adwin.width}")
        change detected at index 1055, window now 57
    """

    #: Ratio between successive newer-part lengths tested.
    GRID_RATIO = 1.1

    def __init__(self, delta: float = 0.002, clock: int = 32, max_window: int = 10_000,
                 min_window_length: int = 5) -> None:
        if not 0 < delta < 1:
            raise ValueError(f"delta must be within (0, 1), got {delta!r}")
        if clock < 1 or min_window_length < 1 or max_window < 2 * min_window_length:
            raise ValueError("ADWIN needs clock >= 1, min_window_length >= 1 and "
                             "max_window >= 2 * min_window_length")
        self.delta = float(delta)
        self.clock = int(clock)
        self.max_window = int(max_window)
        self.min_window_length = int(min_window_length)
        # Prefix sums of the values and their squares: _p1[j] = sum of values before slot j.
        self._p1 = np.zeros(2 * self.max_window + 1, dtype=np.float64)
        self._p2 = np.zeros(2 * self.max_window + 1, dtype=np.float64)
        self._start = 0
        self._end = 0
        self._tick = 0
        self._drift = False

    @property
    def drift_detected(self) -> bool:
        """``True`` if the last :meth:`update` found a change."""
        return self._drift

    @property
    def width(self) -> int:
        """Values in the window."""
        return self._end - self._start

    @property
    def estimation(self) -> float:
        """Mean of the window (0 when empty)."""
        n = self._end - self._start
        return float((self._p1[self._end] - self._p1[self._start]) / n) if n else 0.0

    def update(self, x: float) -> ADWIN:
        """Add one value; returns ``self``."""
        self._drift = False
        if self._end - self._start >= self.max_window:
            self._start += 1
        if self._end == len(self._p1) - 1:  # compact and re-base (keeps the sums precise)
            keep = self._end - self._start
            for p in (self._p1, self._p2):
                p[:keep + 1] = p[self._start:self._end + 1] - p[self._start]
            self._start, self._end = 0, keep
        x = float(x)
        self._p1[self._end + 1] = self._p1[self._end] + x
        self._p2[self._end + 1] = self._p2[self._end] + x * x
        self._end += 1
        self._tick += 1
        if self._tick % self.clock == 0:
            while self._cut():
                self._drift = True
        return self

    def _cut(self) -> bool:
        start, end, lo = self._start, self._end, self.min_window_length
        n = end - start
        if n < 2 * lo:
            return False
        p1, p2 = self._p1, self._p2
        total = p1[end] - p1[start]
        variance = max((p2[end] - p2[start]) / n - (total / n) ** 2, 0.0)
        steps = int(math.log((n - lo) / lo) / math.log(self.GRID_RATIO)) + 2
        newer = np.unique(np.geomspace(lo, n - lo, steps).astype(np.int64))
        k = (n - newer).astype(np.float64)  # size of the older part
        mean_old = (p1[start + n - newer] - p1[start]) / k
        mean_new = (total - (p1[start + n - newer] - p1[start])) / newer
        m = 1.0 / (1.0 / k + 1.0 / newer)  # harmonic mean of the two sizes
        dd = math.log(2.0 * math.log(n) / self.delta)
        epsilon = np.sqrt(2.0 / m * variance * dd) + 2.0 / (3.0 * m) * dd
        cuts = np.nonzero(np.abs(mean_old - mean_new) > epsilon)[0]
        if cuts.size == 0:
            return False
        self._start += int(k[cuts].max())
        return True


class DDM:
    """Drift Detection Method (Gama et al., 2004) for a stream of 0/1 errors.

    Tracks the error rate ``p`` and its standard deviation ``s``; a change is signalled when
    ``p + s`` exceeds the lowest ``p_min + s_min`` seen by ``drift_threshold`` standard
    deviations (``warning_threshold`` sets :attr:`warning_detected`).

    Args:
        warm_start: Values seen before a change can be signalled (100 rather than the
            paper's 30: with low error rates the minimum set after 30 values is often a
            lucky run, and the next ordinary error looks like a change).
        warning_threshold: Standard deviations above the minimum for a warning.
        drift_threshold: Standard deviations above the minimum for a change.

    Raises:
        ValueError: A parameter is out of range.

    Example:
        >>> rng = np.random.default_rng(7)
        >>> stream = np.concatenate([rng.binomial(1, 0.1, 1000), rng.binomial(1, 0.5, 1000)])
        >>> ddm = DDM()
        >>> for i, error in enumerate(stream):
        ...     if ddm.update(error).drift_detected:
        ...         print(f"change detected at index {i}")
        change detected at index 1028
    """

    def __init__(self, warm_start: int = 100, warning_threshold: float = 2.0,
                 drift_threshold: float = 3.0) -> None:
        if warm_start < 1 or not 0 < warning_threshold <= drift_threshold:
            raise ValueError("DDM needs warm_start >= 1 and 0 < warning_threshold <= "
                             "drift_threshold")
        self.warm_start = int(warm_start)
        self.warning_threshold = float(warning_threshold)
        self.drift_threshold = float(drift_threshold)
        self._drift = False
        self._warning = False
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._p = 0.0
        self._ps_min = math.inf
        self._p_min = math.inf
        self._s_min = math.inf

    @property
    def drift_detected(self) -> bool:
        """``True`` if the last :meth:`update` found a change."""
        return self._drift

    @property
    def warning_detected(self) -> bool:
        """``True`` while the error rate is above the warning level."""
        return self._warning

    def update(self, x: float) -> DDM:
        """Add one error (``1`` wrong, ``0`` right; truthy values count as wrong)."""
        if self._drift:
            self._reset()
            self._drift = False
        self._n += 1
        self._p += (float(bool(x)) - self._p) / self._n
        s = math.sqrt(self._p * (1.0 - self._p) / self._n)
        self._warning = False
        if self._n < self.warm_start:
            return self
        if s > 0.0 and self._p + s <= self._ps_min:  # s == 0 (no error yet) is no baseline
            self._p_min, self._s_min, self._ps_min = self._p, s, self._p + s
        if self._ps_min == math.inf:
            return self
        if self._p + s > self._p_min + self.drift_threshold * self._s_min:
            self._drift = True
        elif self._p + s > self._p_min + self.warning_threshold * self._s_min:
            self._warning = True
        return self
