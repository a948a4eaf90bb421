"""Data: readers for every source (sources, arrays) within the limits of limits.py, pure transforms, the prepare
writer, the memory-mapped dataset."""
