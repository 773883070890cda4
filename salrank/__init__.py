"""salrank: a reproducible companion to "Rethinking Object Saliency Ranking" (Song et al., TIP 2024).

Conventions used across the package:

* boxes are ``[x1, y1, x2, y2]`` in pixels of the original image;
* points are ``(x, y)``, 0-based pixel coordinates;
* ranks: 1 = most salient, 0 = not salient.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("salrank")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
