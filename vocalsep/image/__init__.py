"""Image segmentation on the shared core: transforms, datasets, models, losses, metrics,
tiled prediction and the training task. Imports `vocalsep.core`, never `vocalsep.audio`."""
