"""Pictures of results: image grids, GIFs, plots and the HTML run report."""
