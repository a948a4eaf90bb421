"""Data: readers for every source (sources), pure transforms, the prepare writer, the memory-mapped dataset."""
