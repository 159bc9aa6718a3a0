"""Facts about each dataset that config validation needs without torch: sizes and the generated data's defaults."""

CIFAR_TRAIN_SIZE = 50_000
"""CIFAR-10's training images (five batches of 10,000)."""
CIFAR_BATCH_SIZE = 10_000
"""Images per CIFAR-10 batch file (data_batch_1..5, test_batch)."""
SYNTHETIC_IMAGE_SIZE = 32
"""The generated dataset's image side when ``image_size`` is not set (CIFAR's)."""
SYNTHETIC_TRAIN_SIZE = 10_000
"""The generated dataset's training images when ``train_size`` is not set."""
SYNTHETIC_TEST_SIZE = 2_000
"""The generated dataset's test images when ``test_size`` is not set."""
