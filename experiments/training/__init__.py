"""Training: the LightningModule, its callbacks, the lr schedule, pair fusion, resuming, and the run's phases."""
