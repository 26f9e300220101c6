"""Research workbench: latency-constrained NAS for real-time segmentation and one-pass VOS.

The core library imports no Jupyter code; `widgets/` and `notebooks/` read what it writes.
"""

__version__ = "0.1.0"
