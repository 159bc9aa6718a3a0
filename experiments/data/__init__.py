"""Data: the datasets' files and generators (sources), augmentation, JPEG decoding, and the data modules."""
