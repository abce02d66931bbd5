"""Tiled stylization: images of any size in bounded memory, with the untiled output.

`TiledNetwork` (network.py) runs a fast network tile by tile, a pass per normalisation for its
statistics over the whole image (`TileStatistics`, statistics.py); the tiles and the regions
they read are in grid.py; how large a tile fits a memory budget is in budget.py.
"""

from .network import TiledNetwork

__all__ = ["TiledNetwork"]
