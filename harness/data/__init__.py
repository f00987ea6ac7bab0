"""Datasets and loaders: the torchvision and embedded datasets, the search split and augmentation
(``datasets``), and the GPU-resident copy of small datasets with its batching (``device_data``).
One loader factory (``datasets.split_loader``) serves the runs and the throughput benchmark."""
