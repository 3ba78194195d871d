"""nbship: take a Jupyter notebook to a production model service on Kubernetes.

The package follows the data flow, one module per stage:
notebook → extract/analysis → check → spec → render → (image → cluster).
Importing it is cheap: nothing heavy is imported here.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
