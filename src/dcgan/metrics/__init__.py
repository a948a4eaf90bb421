"""Sample-quality metrics in a named feature space: the extractor interface, FID/KID/precision/recall/score,
`dcgan evaluate` and --eval-every."""
